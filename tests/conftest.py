"""Shared fixtures: a migrated database per worker, a rolled-back transaction per test.

How a run goes:
- the controller (the xdist controller, or the only process of a plain `pytest` run)
  starts or finds the server and builds the migrated template once (tests/server.py);
- each worker clones its own database from the template, once;
- each test runs inside a transaction on that database that is rolled back afterwards;
  the code under test commits to savepoints inside it, and the app under test gets a
  session of its own per request on that same connection, through a dependency override;
- a test that needs real commits, several connections or DDL takes `fresh_database`.
"""

import itertools
import os
from collections.abc import AsyncIterator, Callable

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from api.dependencies import READ_ONLY_METHODS, get_session
from app.factory import create_app
from app.settings import Settings
from orm.engine import create_app_engine
from orm.session import ReadOnlySession
from tests.databases import create_database, database_name, drop_database
from tests.migrations.checks import history_problems
from tests.server import RunDatabases, TestServer

_SERVER = pytest.StashKey[TestServer]()
_DATABASES = pytest.StashKey[RunDatabases]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # Before anything runs, in every process: the developer's settings (DATABASE_URL,
    # DIRECT_URL, ... in the environment or in .env) may name a real database. No test,
    # and no process a test starts, may see them: each gets the settings it needs.
    for name in (*(field.upper() for field in Settings.model_fields), "EMBEDDED_PGDATA"):
        os.environ.pop(name, None)
    os.environ["ENV_FILE"] = ""  # read no .env (app/settings.py)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Runs in the controller before xdist starts its workers (its own hook runs last).
    config = session.config
    if _is_worker(config):
        return
    # The template is built by migrating to the head: say why if there is no one head.
    if problems := history_problems():
        raise pytest.UsageError(
            "the migrated template cannot be built, the revision history is broken:\n  "
            + "\n  ".join(problems)
        )
    server = TestServer()
    config.stash[_SERVER] = server
    config.stash[_DATABASES] = server.start()


def pytest_configure_node(node: object) -> None:
    """xdist hook (controller): hand each worker the run's databases."""
    config = node.config  # type: ignore[attr-defined]
    node.workerinput.update(config.stash[_DATABASES].to_workerinput())  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    # Runs after the workers are gone, on failures and on Ctrl-C too.
    server = config.stash.get(_SERVER, None)
    if server is not None:
        server.stop()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    databases = config.stash.get(_DATABASES, None)
    if databases is not None:
        reused = (
            "" if databases.template_builds else " (kept from an earlier run: migrations unchanged)"
        )
        terminalreporter.write_line(
            f"migrated template {databases.template}: built {databases.template_builds} "
            f"time(s) this run{reused}"
        )


@pytest.fixture(scope="session")
def run_databases(request: pytest.FixtureRequest) -> RunDatabases:
    config = request.config
    if _is_worker(config):
        return RunDatabases.from_workerinput(config.workerinput)  # type: ignore[attr-defined]
    return config.stash[_DATABASES]


@pytest.fixture(scope="session")
def worker_name(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def database_url(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    """This worker's own database, cloned from the migrated template."""
    name = database_name(run_databases.run, worker_name)
    url = await create_database(run_databases.admin_url, name, template=run_databases.template)
    yield url
    await drop_database(run_databases.admin_url, name)


@pytest.fixture(scope="session")
def app_settings(run_databases: RunDatabases, database_url: URL) -> Settings:
    """The app's settings for this worker's database: directly, or through the run's
    PgBouncer when TEST_PGBOUNCER=1 (tests/server.py)."""
    port = run_databases.pgbouncer_port
    if port is None:
        return settings_for(database_url)
    return settings_for(
        database_url.set(port=port), db_behind_pgbouncer=True, direct_url=database_url
    )


@pytest.fixture(scope="session")
async def engine(app_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The app's kind of engine, on the app's URL: the tests' sessions see what it sees."""
    assert app_settings.database_url is not None
    engine = create_app_engine(app_settings, app_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        if transaction.is_active:
            await transaction.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session inside the test's transaction; its commits only release savepoints."""
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        yield session


def settings_for(database_url: URL, **settings: object) -> Settings:
    # _env_file=None: a developer's .env must not leak into the tests.
    return Settings(database_url=database_url, _env_file=None, **settings)  # type: ignore[call-arg, arg-type]


@pytest.fixture(scope="session")
def app(app_settings: Settings) -> FastAPI:
    """The application, built once per worker; `client` runs its lifespan for each test."""
    return create_app(app_settings)


@pytest.fixture
async def client(app: FastAPI, connection: AsyncConnection) -> AsyncIterator[AsyncClient]:
    """An HTTP client for the app. Each request gets a session of its own, as in production,
    on the test's connection: its commits release a savepoint, and the test's rollback
    undoes everything. GET requests' sessions are read-only at the server here too, by
    SET TRANSACTION READ ONLY inside their savepoint (production uses a read-only pool
    instead: tests/api/test_read_only_requests.py covers that one)."""

    async def session_of_this_request(request: Request) -> AsyncIterator[AsyncSession]:
        read_only = request.method in READ_ONLY_METHODS
        async with AsyncSession(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            sync_session_class=ReadOnlySession if read_only else Session,
        ) as session:
            if read_only:  # ends with the savepoint, which closing the session rolls back
                await session.execute(text("SET TRANSACTION READ ONLY"))
            try:
                yield session
            except BaseException:
                await session.rollback()  # to the savepoint: the test's transaction lives on
                raise

    app.dependency_overrides[get_session] = session_of_this_request
    try:
        # The lifespan per test, not per worker: it opens the process's one
        # sessionmanager, which a test that builds an app of its own opens too.
        async with (
            LifespanManager(app),
            AsyncClient(transport=ASGITransport(app), base_url="http://test") as client,
        ):
            yield client
    finally:
        app.dependency_overrides.clear()


_fresh_numbers = itertools.count()


@pytest.fixture
async def fresh_database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    """A database of its own, cloned from the template, for real commits and DDL; dropped after."""
    name = database_name(run_databases.run, f"{worker_name}_{next(_fresh_numbers)}")
    url = await create_database(run_databases.admin_url, name, template=run_databases.template)
    yield url
    await drop_database(run_databases.admin_url, name)


@pytest.fixture
def url_for(app: FastAPI) -> Callable[..., str]:
    """`url_for("read_user", user_id=1)`: tests follow the routes, not hand-written paths."""
    return lambda name, **params: str(app.url_path_for(name, **params))
