"""Fixtures for running the app as several processes and behind PgBouncer."""

from collections.abc import Iterator

import pytest
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.server import RunDatabases


@pytest.fixture
def pgbouncer(run_databases: RunDatabases) -> Iterator[PgBouncer]:
    """A PgBouncer of this test's own, in transaction mode, in front of the run's server."""
    require_pgbouncer()
    bouncer = PgBouncer(run_databases.admin_url)
    bouncer.start()
    yield bouncer
    bouncer.stop()
