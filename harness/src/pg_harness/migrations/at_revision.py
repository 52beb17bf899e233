"""A database of a test's own at some revision, for testing a migration on real rows."""

from collections.abc import Mapping, Sequence

import asyncpg
from sqlalchemy import Row, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from pg_harness.project import project
from pg_harness.urls import asyncpg_connect_args


class DatabaseAtRevision:
    """Rows go in with plain SQL: the ORM models describe the head revision, not this one."""

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
        await project().migrations.upgrade(self.connection, revision)

    async def downgrade(self, revision: str) -> None:
        await project().migrations.downgrade(self.connection, revision)
