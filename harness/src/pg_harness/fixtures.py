"""The fixtures a project's tests get from the harness, all on databases of the run's own.

- `database_url`: this worker's database, cloned from the migrated template once;
- `engine`, `connection`, `session`: a transaction per test on it, rolled back afterwards
  (SQLAlchemy's "join an external transaction" recipe); a project overrides `engine` to
  get its own kind (pool, driver settings);
- `fresh_database`: a database of the test's own, for real commits and DDL;
- `empty_database`: one with no schema, per module; `database_at(revision)`: one migrated
  up to `revision`, for data migrations;
- `pgbouncer`: a PgBouncer of the test's own in front of the run's server;
- `standby`: a streaming standby of the run's server, of the test's own.
"""

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from pg_harness.databases import create_database, database_name, drop_database
from pg_harness.embedded.base_backup import standby_parent
from pg_harness.embedded.followable import unfollowable_reason
from pg_harness.embedded.standby import Standby
from pg_harness.migrations.at_revision import DatabaseAtRevision
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.plugin import run_databases_of
from pg_harness.processes import reachable_dir
from pg_harness.project import project
from pg_harness.server import RunDatabases

_numbers = itertools.count()


@pytest.fixture(scope="session")
def run_databases(request: pytest.FixtureRequest) -> RunDatabases:
    """Where the run's server is, the run's number and its migrated template."""
    return run_databases_of(request.config)


@pytest.fixture(scope="session")
def worker_name(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def database_url(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    """This worker's own database, cloned from the migrated template."""
    async with run_databases.database(worker_name) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions_to_close() -> list[AsyncSession]:
    """Sessions that `connection` closes before its rollback, so that they need no async
    teardown of their own (each async fixture costs a trip through the event loop)."""
    return []


@pytest.fixture(scope="session")
async def _worker_connection(engine: AsyncEngine) -> AsyncIterator[list[AsyncConnection]]:
    # One connection per worker, kept: a checkout and a return per test cost more than
    # the test's own BEGIN and ROLLBACK. A list, so that one a test closed is replaced.
    kept = [await engine.connect()]
    yield kept
    await kept[0].close()


async def begin_test_transaction(
    kept: list[AsyncConnection], engine: AsyncEngine
) -> AsyncConnection:
    """The worker's connection in a new transaction: reopened if a test closed it,
    replaced if the server closed it between tests (asyncpg knows without a round trip),
    and out of any transaction a test left behind."""
    connection = kept[0]
    if connection.closed:
        connection = kept[0] = await engine.connect()
    if connection.invalidated and connection.in_transaction():
        await connection.rollback()  # of a connection already discarded: nothing is sent
    raw = await connection.get_raw_connection()  # reconnects one that was discarded
    if raw.driver_connection is not None and raw.driver_connection.is_closed():
        await connection.invalidate()  # reconnects at the next statement
    if connection.in_transaction():
        await connection.rollback()
    # Awaited, not begun synchronously: a project's "begin" listeners may run statements
    # (SET LOCAL behind PgBouncer, pg_runtime/engine.py), which need SQLAlchemy's greenlet.
    await connection.begin()
    return connection


@pytest.fixture
async def connection(
    engine: AsyncEngine,
    _worker_connection: list[AsyncConnection],
    sessions_to_close: list[AsyncSession],
) -> AsyncIterator[AsyncConnection]:
    """A connection inside the test's transaction, which is rolled back afterwards."""
    connection = await begin_test_transaction(_worker_connection, engine)
    try:
        yield connection
    finally:
        try:
            # The test's transaction, or one it began after committing or rolling back.
            if not connection.closed and connection.in_transaction():
                await connection.rollback()
        finally:
            # After the rollback, which ended their savepoints too: closing sends nothing.
            for session in sessions_to_close:
                if session.in_transaction():  # a session never used holds nothing
                    await session.close()


@pytest.fixture
def session(connection: AsyncConnection, sessions_to_close: list[AsyncSession]) -> AsyncSession:
    """A session inside the test's transaction; its commits only release savepoints."""
    session = AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    sessions_to_close.append(session)
    return session


@pytest.fixture
async def fresh_database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    """A database of its own, cloned from the template, for real commits and DDL; dropped after."""
    async with run_databases.database(f"{worker_name}_{next(_numbers)}") as url:
        yield url


@pytest.fixture(scope="module")
async def empty_database(
    run_databases: RunDatabases, worker_name: str, request: pytest.FixtureRequest
) -> AsyncIterator[URL]:
    """A database with no schema at all (from template0), for this module."""
    module = request.module.__name__.split(".")[-1]
    async with run_databases.database(f"{worker_name}_{module}", migrated=False) as url:
        yield url


@pytest.fixture
async def database_at(
    run_databases: RunDatabases, worker_name: str
) -> AsyncIterator[Callable[[str], Awaitable[DatabaseAtRevision]]]:
    """`db = await database_at("<revision>")`: a fresh database migrated up to it."""
    async with AsyncExitStack() as cleanup:

        async def at(revision: str) -> DatabaseAtRevision:
            name = database_name(run_databases.run, f"{worker_name}_at_{next(_numbers)}")
            url = await create_database(run_databases.admin_url, name, roles=run_databases.roles)
            cleanup.push_async_callback(drop_database, run_databases.admin_url, name)
            engine = create_async_engine(url, poolclass=NullPool)
            cleanup.push_async_callback(engine.dispose)
            connection = await cleanup.enter_async_context(engine.connect())
            await project().migrations.upgrade(connection, revision)
            return DatabaseAtRevision(connection, url)

        yield at


@pytest.fixture
def pgbouncer(run_databases: RunDatabases) -> Iterator[PgBouncer]:
    """A PgBouncer of this test's own, in transaction mode, in front of the run's server,
    serving the run's roles (SCRAM)."""
    require_pgbouncer()
    bouncer = PgBouncer(run_databases.admin_url, users=run_databases.roles.passwords)
    bouncer.start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
async def standby(run_databases: RunDatabases) -> AsyncIterator[Standby]:
    """A hot standby streaming from the run's server, of this test's own, to pause or halt;
    skipped where the embedded PostgreSQL cannot follow that server (TEST_DATABASE_URL).
    The run's databases are on it too: `standby.url(name)` once `wait_caught_up()`."""
    reason = await unfollowable_reason(run_databases.admin_url)
    if reason is not None:
        pytest.skip(reason)
    with reachable_dir("standby-", standby_parent()) as parent:
        standby = Standby(run_databases.admin_url, parent / "data")
        try:
            standby.start()
            yield standby
        finally:
            standby.stop()
