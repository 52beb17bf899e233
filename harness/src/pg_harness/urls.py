"""The server URLs the harness is given (TEST_DATABASE_URL) and hands out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url


def asyncpg_url(raw: str | URL) -> URL:
    """`raw`, whatever its scheme (postgresql://, postgres://), through the asyncpg driver."""
    url = make_url(raw.replace("postgres://", "postgresql://", 1) if isinstance(raw, str) else raw)
    return url.set(drivername="postgresql+asyncpg")


def with_database(url: URL, database: str) -> URL:
    """The same server and credentials, another database."""
    return url.set(database=database)


def asyncpg_connect_args(url: URL) -> dict[str, object]:
    """`asyncpg.connect(**...)` arguments for `url`, for tests that need a bare connection."""
    return {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


@asynccontextmanager
async def connected(url: URL) -> AsyncIterator[Any]:
    """A bare asyncpg connection to `url`, closed on leaving."""
    connection = await asyncpg.connect(**asyncpg_connect_args(url))
    try:
        yield connection
    finally:
        await connection.close()
