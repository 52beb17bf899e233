"""The tests' PgBouncer authenticates its clients with SCRAM, from an auth file that was
never readable by another account, and serves the run's roles."""

import asyncpg
import pytest
from pg_harness.pgbouncer import PgBouncer
from pg_harness.server import RunDatabases
from pg_harness.urls import asyncpg_connect_args, connected
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow


async def test_the_tests_pgbouncer_serves_the_runs_roles_with_scram_only(
    pgbouncer: PgBouncer, run_databases: RunDatabases, fresh_database: URL
) -> None:
    roles = run_databases.roles
    through = pgbouncer.url_for(fresh_database)
    for role in (roles.owner, roles.app, roles.reader):
        async with connected(through.set(username=role)) as connection:
            assert await connection.fetchval("SELECT current_user") == role

    with pytest.raises(asyncpg.PostgresError, match="SASL authentication failed"):
        await asyncpg.connect(**asyncpg_connect_args(through) | {"password": "not-the-password"})

    assert pgbouncer._dir is not None
    config = (pgbouncer._dir / "pgbouncer.ini").read_text()
    assert "auth_type = scram-sha-256" in config
    assert (pgbouncer._dir / "userlist.txt").stat().st_mode & 0o777 == 0o600
