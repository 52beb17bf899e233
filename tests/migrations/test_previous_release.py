"""The previous release's own tests pass on this head's schema: no contract step shipped
too early (pg_harness.migrations.previous_release)."""

from pathlib import Path

import pytest
from pg_harness.migrations.previous_release import check_previous_release
from pg_harness.server import RunDatabases

pytestmark = pytest.mark.slow


def test_the_previous_release_runs_on_this_schema(
    run_databases: RunDatabases, tmp_path: Path
) -> None:
    check_previous_release(run_databases, tmp_path)
