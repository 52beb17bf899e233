"""Fixtures for migration tests: empty databases and the revision history."""

import itertools
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import Script
from sqlalchemy import Row, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from orm.migrations import downgrade, upgrade
from tests.databases import asyncpg_connect_args, create_database, database_name, drop_database
from tests.migrations.checks import load_history
from tests.server import RunDatabases


def revisions_base_to_head(config: Config | None = None) -> list[Script]:
    """Every revision, oldest first; new ones are picked up without editing any test."""
    script, _problems = load_history(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported by test_history
        return list(reversed(list(script.walk_revisions())))


@pytest.fixture(scope="module")
async def empty_database(
    run_databases: RunDatabases, worker_name: str, request: pytest.FixtureRequest
) -> AsyncIterator[URL]:
    """A database with no schema at all (from template0), for this module."""
    name = database_name(
        run_databases.run, f"{worker_name}_{request.module.__name__.split('.')[-1]}"
    )
    url = await create_database(run_databases.admin_url, name)
    yield url
    await drop_database(run_databases.admin_url, name)


class DatabaseAtRevision:
    """A database of its own at some revision, for testing a migration on real rows.

    Rows go in with plain SQL: the ORM models describe the head revision, not this one.
    """

    def __init__(self, connection: AsyncConnection, url: URL) -> None:
        self.connection = connection
        self.url = url

    async def execute_alone(self, sql: str) -> None:
        """Run `sql` on a connection of its own, outside any transaction (CONCURRENTLY)."""
        other = await asyncpg.connect(**asyncpg_connect_args(self.url))
        try:
            await other.execute(sql)
        finally:
            await other.close()

    async def execute(
        self, sql: str, params: Mapping[str, object] | Sequence[Mapping[str, object]] = {}
    ) -> list[Row[object]]:
        """Run `sql`, commit, and return its rows (if it returns any)."""
        result = await self.connection.execute(text(sql), params)
        rows = list(result.all()) if result.returns_rows else []
        await self.connection.commit()
        return rows

    async def upgrade(self, revision: str) -> None:
        await upgrade(self.connection, revision)

    async def downgrade(self, revision: str) -> None:
        await downgrade(self.connection, revision)


_numbers = itertools.count()


@pytest.fixture
async def database_at(
    run_databases: RunDatabases, worker_name: str
) -> AsyncIterator[Callable[[str], Awaitable[DatabaseAtRevision]]]:
    """`db = await database_at("<revision>")`: a fresh database migrated up to it."""
    async with AsyncExitStack() as cleanup:

        async def at(revision: str) -> DatabaseAtRevision:
            name = database_name(run_databases.run, f"{worker_name}_at_{next(_numbers)}")
            url = await create_database(run_databases.admin_url, name)
            cleanup.push_async_callback(drop_database, run_databases.admin_url, name)
            engine = create_async_engine(url, poolclass=NullPool)
            cleanup.push_async_callback(engine.dispose)
            connection = await cleanup.enter_async_context(engine.connect())
            await upgrade(connection, revision)
            return DatabaseAtRevision(connection, url)

        yield at
