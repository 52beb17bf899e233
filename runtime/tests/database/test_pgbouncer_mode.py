"""TEST_PGBOUNCER=1: the tests' sessions reach the server the way the app's do."""

from pg_harness.server import RunDatabases
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def test_sessions_go_through_pgbouncer_only_when_asked(
    session: AsyncSession, run_databases: RunDatabases
) -> None:
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    # The backend pid asyncpg was told at login: PgBouncer hands out a key of its own.
    pid_at_login = driver.get_server_pid()  # type: ignore[union-attr]
    pid_running_our_query = await session.scalar(text("SELECT pg_backend_pid()"))

    if run_databases.pgbouncer_port is None:
        assert pid_at_login == pid_running_our_query
    else:
        assert connection.engine.url.port == run_databases.pgbouncer_port
        assert pid_at_login != pid_running_our_query
