"""Each revision's DDL, reviewed for locks production would feel and for statements that
break the release still running during a deploy (pg_harness.migrations.ddl_review)."""

import pytest
from alembic.script import Script
from pg_harness.migrations.checks import revisions
from pg_harness.migrations.ddl_review import check_ddl


@pytest.mark.parametrize("revision", revisions(), ids=lambda script: script.revision)
def test_revision_takes_no_lock_production_would_feel(revision: Script) -> None:
    check_ddl(revision)
