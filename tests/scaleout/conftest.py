"""Fixtures for running the app as several processes and behind PgBouncer."""

from collections.abc import Iterator

import pytest

from tests.pgbouncer import INSTALL_HINT, PgBouncer, pgbouncer_binary
from tests.server import RunDatabases


@pytest.fixture
def pgbouncer(run_databases: RunDatabases) -> Iterator[PgBouncer]:
    """A PgBouncer of this test's own, in transaction mode, in front of the run's server."""
    if pgbouncer_binary() is None:
        pytest.skip(INSTALL_HINT)
    bouncer = PgBouncer(run_databases.admin_url)
    bouncer.start()
    yield bouncer
    bouncer.stop()
