"""`alembic upgrade head --sql` writes a script for every revision, for a DBA to review."""

import pytest
from alembic.script import Script

from tests.migrations.checks import OFFLINE_MARKER, offline_sql, offline_unsupported_reason
from tests.migrations.conftest import revisions_base_to_head


@pytest.mark.parametrize("revision", revisions_base_to_head(), ids=lambda script: script.revision)
def test_revision_can_be_written_as_sql(revision: Script) -> None:
    if reason := offline_unsupported_reason(revision):
        pytest.skip(f"{revision.revision} sets {OFFLINE_MARKER}: {reason}")

    sql = offline_sql(revision)

    # The version bookkeeping is always there; the revision's own statements come before it.
    assert f"UPDATE alembic_version SET version_num='{revision.revision}'" in sql or (
        f"INSERT INTO alembic_version (version_num) VALUES ('{revision.revision}')" in sql
    )
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    assert len(statements) > 3, f"{revision.revision} wrote no statement of its own:\n{sql}"
