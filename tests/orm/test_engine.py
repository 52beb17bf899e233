"""The app's engine replaces connections the server closed, without a query per checkout."""

import anyio
import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import URL

from orm.engine import create_app_engine
from tests.conftest import settings_for
from tests.databases import asyncpg_connect_args


async def end_session(database_url: URL, pid: int) -> None:
    """What a server restart does to one connection: the server ends it and closes its socket."""
    admin = await asyncpg.connect(**asyncpg_connect_args(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        # pg_terminate_backend only signals: wait until the session is gone.
        gone = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)"
        with anyio.fail_after(5):
            while not await admin.fetchval(gone, pid):  # noqa: ASYNC110 (polls the server)
                await anyio.sleep(0.01)
    finally:
        await admin.close()
    await anyio.sleep(0.05)  # the event loop reads the socket's end of file


async def test_a_connection_the_server_closed_is_replaced_at_checkout(database_url: URL) -> None:
    # One connection, no pre-ping: the next checkout gets the very connection that was ended.
    settings = settings_for(database_url, db_pool_size=1, db_max_overflow=0, db_pool_pre_ping=False)
    engine = create_app_engine(settings, database_url)
    try:
        async with engine.connect() as connection:
            ended = await connection.scalar(text("SELECT pg_backend_pid()"))
        await end_session(database_url, ended)

        async with engine.connect() as connection:
            replacement = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert replacement != ended
    finally:
        await engine.dispose()
