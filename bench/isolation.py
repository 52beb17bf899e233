"""What it costs to give each test a clean database, four ways, on a 50-table schema.

Measured side by side in one run, in milliseconds (min, median, count):
- (a) the rolled-back transaction of pg_harness.fixtures (SQLAlchemy's "join an external
  transaction" recipe) around a small test body, against the same body alone;
- (b) a database of its own per test: CREATE DATABASE ... TEMPLATE, then DROP DATABASE;
- (c) one TRUNCATE of all 50 tables, RESTART IDENTITY CASCADE;
- (d) DELETE of every table's rows, table by table, after a row was put in each;
- (e) what the API tests' `client` adds per GET request: a read on the test's own
  session, against a session of the request's own on the test's connection, read-only
  in a savepoint (pg_harness.fixtures);
- and the one-off build of the migrated template (create database, migrate to head).

The server is chosen as the tests choose it: TEST_DATABASE_URL if set (there only
databases named bench_isolation_<pid>_* are created, and all are dropped at the end),
else a throw-away embedded server. Run from the project root:

    .venv/bin/python -m bench.isolation [--repeat N]
"""

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from pg_harness.databases import create_database, database_names, drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_runtime.database_url import to_asyncpg_url
from pg_runtime.sessions import ReadOnlySession
from sqlalchemy import MetaData, Table, bindparam, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from orm.migrations import upgrade
from orm.models import User

PREFIX = f"bench_isolation_{os.getpid()}_"
TABLES = 50
ADDED_TABLES = 48  # beside user_account and note, which the migrations make
SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes")
_ITEM_TABLE = (
    "CREATE TABLE bench_item_{:02} (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " label text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now(){})"
)
ALONE, ISOLATED = "(a) test body alone", "(a) test body, rolled back"
SHARED_READ = "(e) a GET's read on the test's session"
OWN_READ = "(e) a GET's read on a read-only session of its own"

Step = Callable[[], Awaitable[object]]
_serial = itertools.count()


async def timed(repeat: int, step: Step, before: Step | None = None) -> list[float]:
    """Milliseconds per call of `step`; `before` runs untimed ahead of each call."""
    times: list[float] = []
    for _ in range(repeat):
        if before is not None:
            await before()
        start = time.perf_counter()
        await step()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def build_template(admin_url: URL, name: str) -> None:
    # pg_harness.databases.TestRun.build_template without the run's naming and lock.
    engine = create_async_engine(await create_database(admin_url, name), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await upgrade(connection)
    finally:
        # Nothing may stay connected to a database that is to be cloned.
        await engine.dispose()


async def grow_schema(url: URL) -> None:
    # Autocommit: each CREATE TABLE stands alone.
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            for i in range(1, ADDED_TABLES + 1):
                # A foreign key on every other table: CASCADE and the DELETE order must matter.
                user_id = ", user_id integer REFERENCES user_account (id)" if i % 2 else ""
                await connection.execute(text(_ITEM_TABLE.format(i, user_id)))
    finally:
        await engine.dispose()


async def body(session: AsyncSession) -> None:
    """A typical small test: add a row, commit, read it back from the database."""
    user = User(email=f"bench{next(_serial)}@example.com", name="bench")
    session.add(user)
    await session.commit()
    assert await session.scalar(select(User.name).where(User.id == user.id)) == "bench"


async def body_alone(engine: AsyncEngine) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        await body(session)


async def body_isolated(engine: AsyncEngine) -> None:
    # The `connection` and `session` fixtures of pg_harness.fixtures, inlined.
    async with engine.connect() as connection:
        transaction = await connection.begin()
        async with AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            await body(session)
        await transaction.rollback()


async def request_reads(engine: AsyncEngine, repeat: int) -> dict[str, list[float]]:
    """(e): inside one test's transaction, as the `client` fixture reads."""
    read = select(User.name).where(User.id == bindparam("id"))
    async with engine.connect() as connection:
        transaction = await connection.begin()
        async with AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            user = User(email=f"reader{next(_serial)}@example.com", name="bench")
            session.add(user)
            await session.commit()

            async def on_the_tests_session() -> None:
                await session.scalar(read, {"id": user.id})

            async def on_its_own_session() -> None:
                async with AsyncSession(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    sync_session_class=ReadOnlySession,
                ) as own:
                    await own.execute(text("SET TRANSACTION READ ONLY"))
                    await own.scalar(read, {"id": user.id})

            results: dict[str, list[float]] = {SHARED_READ: [], OWN_READ: []}
            for _ in range(repeat):  # alternated, so both see the same noise
                results[SHARED_READ] += await timed(1, on_the_tests_session)
                results[OWN_READ] += await timed(1, on_its_own_session)
        await transaction.rollback()
    return results


async def fill(engine: AsyncEngine, tables: list[Table]) -> None:
    """One row in every table, as a test that really committed would leave them."""
    async with engine.begin() as connection:
        user_id = await connection.scalar(
            text("INSERT INTO user_account (email, name) VALUES (:email, 'b') RETURNING id"),
            {"email": f"fill{next(_serial)}@example.com"},
        )
        for table in (t for t in tables if t.name != "user_account"):
            values = {"user_id": user_id} if "user_id" in table.c else {}
            values |= {"title": "bench"} if table.name == "note" else {}
            await connection.execute(table.insert().values(values))


async def truncate(engine: AsyncEngine, tables: list[Table]) -> None:
    names = ", ".join(table.name for table in tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


async def delete_each(engine: AsyncEngine, tables: list[Table]) -> None:
    async with engine.begin() as connection:
        # Children first, so that no foreign key is violated on the way.
        for table in reversed(tables):
            await connection.execute(table.delete())


async def measure(admin_url: URL, repeat: int) -> tuple[dict[str, list[float]], list[str]]:
    """Milliseconds per round of each approach, and the server's settings that matter."""
    template, grown, work = PREFIX + "template", PREFIX + "grown", PREFIX + "work"
    results = {
        "migrated template build (one-off)": await timed(
            max(3, repeat // 5),
            lambda: build_template(admin_url, template),
            before=lambda: drop_database(admin_url, template),
        )
    }
    await grow_schema(await create_database(admin_url, grown, template=template))
    engine = create_async_engine(await create_database(admin_url, work, template=grown))
    try:
        async with engine.connect() as connection:
            facts = [f"{s}: {await connection.scalar(text(f'SHOW {s}'))}" for s in SETTINGS]
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
        tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
        assert len(tables) == TABLES, [table.name for table in tables]

        # Untimed warm-up: pooled connections open, statements prepared, catalogs cached.
        for _ in range(5):
            await body_alone(engine)
            await body_isolated(engine)
        # The per-test figures are small and noisy: ten times the rounds.
        results[ALONE] = await timed(repeat * 10, lambda: body_alone(engine))
        results[ISOLATED] = await timed(repeat * 10, lambda: body_isolated(engine))
        results |= await request_reads(engine, repeat * 10)

        async def clone_and_drop() -> None:
            await create_database(admin_url, PREFIX + "clone", template=grown)
            await drop_database(admin_url, PREFIX + "clone")

        results["(b) CREATE DATABASE TEMPLATE + DROP"] = await timed(repeat, clone_and_drop)
        for label, clear in [
            (f"(c) TRUNCATE {TABLES} tables, one statement", truncate),
            (f"(d) DELETE {TABLES} tables, one by one", delete_each),
        ]:
            await clear(engine, tables)  # warm-up
            results[label] = await timed(
                repeat, partial(clear, engine, tables), before=partial(fill, engine, tables)
            )
    finally:
        await engine.dispose()
    return results, facts


async def drop_ours(admin_url: URL) -> None:
    for name in await database_names(admin_url, PREFIX):
        await drop_database(admin_url, name)


def report(results: dict[str, list[float]], facts: list[str]) -> None:
    print(f"{'':44} {'count':>6} {'min ms':>9} {'median ms':>10}")
    for label, times in results.items():
        print(f"{label:44} {len(times):6} {min(times):9.2f} {statistics.median(times):10.2f}")
        if label == ISOLATED:
            low = min(times) - min(results[ALONE])
            median = statistics.median(times) - statistics.median(results[ALONE])
            print(f"{'(a) isolation cost: the difference':44} {'':6} {low:9.2f} {median:10.2f}")
    print("", *facts, f"cpus: {os.cpu_count()}", sep="\n")


async def run(admin_url: URL, repeat: int, server: str) -> None:
    try:
        results, facts = await measure(admin_url, repeat)
    finally:
        # Also after a failure or Ctrl-C: a shared server must not keep our databases.
        await drop_ours(admin_url)
    report(results, [f"server: {server}", *facts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="rounds per figure (default 50)")
    repeat = parser.parse_args().repeat
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        url = to_asyncpg_url(given)
        asyncio.run(run(url, repeat, f"TEST_DATABASE_URL ({url.host}:{url.port})"))
        return
    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="bench-postgres-")), throwaway=True)
    try:
        asyncio.run(run(embedded.start(), repeat, "embedded, throw-away"))
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
