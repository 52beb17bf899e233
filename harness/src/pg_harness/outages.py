"""What the server does to its clients when it goes away, on demand, for tests of how
clients take it."""

import anyio
import asyncpg
from sqlalchemy.engine import URL

from pg_harness.urls import asyncpg_connect_args


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
