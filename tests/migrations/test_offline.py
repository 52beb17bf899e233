"""`alembic upgrade head --sql` writes a script for every revision, for a DBA to review."""

import pytest
from alembic.script import Script
from pg_harness.migrations.checks import (
    OFFLINE_MARKER,
    check_offline,
    offline_unsupported_reason,
    revisions,
)


@pytest.mark.parametrize("revision", revisions(), ids=lambda script: script.revision)
def test_revision_can_be_written_as_sql(revision: Script) -> None:
    if reason := offline_unsupported_reason(revision):
        pytest.skip(f"{revision.revision} sets {OFFLINE_MARKER}: {reason}")

    check_offline(revision)
