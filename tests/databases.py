"""The temporary databases of one test run: names, the migrated template, cleanup.

Every database the harness creates is named `pytest_r<run>_<what>`, so it is recognisable
and says which run made it. The run holds a session-level advisory lock keyed by its
number on its admin connection for as long as it lives. A later run that can take a dead
run's lock knows that run is gone (the server released the lock with its connection),
and only then drops its leftovers; two live runs on one server never touch each other's
databases, and nothing else on the server is ever touched.
"""

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.database_url import with_database
from orm.migrations import upgrade

PREFIX = "pytest_r"
_NAME = re.compile(rf"^{PREFIX}(\d+)_")
# First key of the two-key advisory lock: "this is a test run"; the second is its number.
_LOCK_CLASS = 0x7E57


def admin_engine(admin_url: URL) -> AsyncEngine:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    return create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def database_name(run: int, what: str) -> str:
    return f"{PREFIX}{run}_{what}"


async def create_database(admin_url: URL, name: str, template: str = "template0") -> URL:
    engine = admin_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        await engine.dispose()
    return with_database(admin_url, name)


async def drop_database(admin_url: URL, name: str) -> None:
    engine = admin_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await _drop(connection, name)
    finally:
        await engine.dispose()


async def _drop(connection: AsyncConnection, name: str) -> None:
    # A template cannot be dropped until it is unmarked; FORCE ends sessions a test left open.
    is_template = await connection.scalar(
        text("SELECT datistemplate FROM pg_database WHERE datname = :name"), {"name": name}
    )
    if is_template is None:
        return
    if is_template:
        await connection.execute(text(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false'))
    await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class TestRun:
    """One pytest run's hold on the server; lives in the controller process."""

    __test__ = False  # not a test class, despite the name

    admin_url: URL
    number: int
    _engine: AsyncEngine
    _lock: AsyncConnection
    template_builds: int = 0

    @classmethod
    async def begin(cls, admin_url: URL) -> "TestRun":
        engine = admin_engine(admin_url)
        lock = await engine.connect()
        while True:
            number = secrets.randbelow(2**31)
            taken = await lock.scalar(
                text("SELECT pg_try_advisory_lock(:class, :run)"),
                {"class": _LOCK_CLASS, "run": number},
            )
            if taken:
                break
        run = cls(admin_url, number, engine, lock)
        await run._drop_leftovers_of_dead_runs()
        return run

    def database(self, what: str) -> str:
        return database_name(self.number, what)

    async def build_template(self) -> str:
        """A database at the head revision, built by the real migrations, closed to connections."""
        name = self.database("template")
        url = await create_database(self.admin_url, name)
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await upgrade(connection)
        finally:
            # CREATE DATABASE ... TEMPLATE fails while anything is connected to the template.
            await engine.dispose()
        await self._lock.execute(
            text(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        )
        self.template_builds += 1
        return name

    async def end(self) -> None:
        """Drop every database of this run (a crashed worker's too), then release the lock."""
        try:
            for name in await self._databases_of(self.number):
                await _drop(self._lock, name)
        finally:
            await self._lock.close()
            await self._engine.dispose()

    async def _databases_of(self, run: int | None) -> list[str]:
        names = await self._lock.scalars(
            text("SELECT datname FROM pg_database WHERE datname LIKE :pattern ORDER BY datname"),
            {"pattern": f"{PREFIX}{'' if run is None else run}%"},
        )
        return [n for n in names if (m := _NAME.match(n)) and (run is None or int(m[1]) == run)]

    async def _drop_leftovers_of_dead_runs(self) -> None:
        for name in await self._databases_of(None):
            match = _NAME.match(name)
            assert match is not None
            run = int(match[1])
            if run == self.number:
                continue
            alive = not await self._lock.scalar(
                text("SELECT pg_try_advisory_lock(:class, :run)"),
                {"class": _LOCK_CLASS, "run": run},
            )
            if alive:
                continue
            try:
                await _drop(self._lock, name)
            finally:
                await self._lock.execute(
                    text("SELECT pg_advisory_unlock(:class, :run)"),
                    {"class": _LOCK_CLASS, "run": run},
                )
