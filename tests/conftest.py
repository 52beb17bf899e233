"""The app under test and its client, on the database fixtures pg-harness gives.

pg-harness (harness/README.md) starts the run's PostgreSQL, builds the migrated template
once, and gives `database_url` (this worker's database), `connection` and `session` (a
transaction per test, rolled back), `fresh_database` and `database_at`. Here they are
wired to the app: its settings, its kind of engine, and a client whose every request gets
a session of its own on the test's connection.
"""

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pg_harness.server import RunDatabases
from pg_runtime.engine import create_app_engine
from pg_runtime.sessions import ReadOnlySession
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from api.dependencies import read_session, snapshot_session, write_session
from app.factory import create_app
from app.settings import Settings
from tests.in_process import settings_for


def pytest_configure(config: pytest.Config) -> None:
    # Before anything runs, in every process: the developer's settings (DATABASE_URL,
    # DIRECT_URL, ... in the environment or in .env) may name a real database. No test,
    # and no process a test starts, may see them: each gets the settings it needs.
    for name in (field.upper() for field in Settings.model_fields):
        os.environ.pop(name, None)
    os.environ["ENV_FILE"] = ""  # read no .env (app/settings.py)


@pytest.fixture(scope="session")
def app_settings(run_databases: RunDatabases, database_url: URL) -> Settings:
    """The app's settings for this worker's database: directly, or through the run's
    PgBouncer when TEST_PGBOUNCER=1 (with its statement caches on if that PgBouncer tracks
    prepared statements)."""
    port = run_databases.pgbouncer_port
    if port is None:
        return settings_for(database_url)
    return settings_for(
        database_url.set(port=port),
        db_behind_pgbouncer=True,
        direct_url=database_url,
        db_pgbouncer_prepared_statements=run_databases.pgbouncer_prepared_statements,
    )


@pytest.fixture(scope="session")
async def engine(app_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The app's kind of engine, on the app's URL: the tests' sessions see what it sees."""
    assert app_settings.database_url is not None
    engine = create_app_engine(app_settings, app_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(app_settings: Settings) -> FastAPI:
    return create_app(app_settings)


@pytest.fixture
def client(app: FastAPI, connection: AsyncConnection) -> Iterator[AsyncClient]:
    """An HTTP client for the app. Each request gets a session of its own, as in production,
    on the test's connection: its commits release a savepoint, and the test's rollback
    undoes everything. A `ReadSession` is read-only at the server here too, by SET
    TRANSACTION READ ONLY inside its savepoint (production uses a read-only pool in
    autocommit instead: runtime/tests/service/test_read_only_requests.py covers that one).

    The app's lifespan does not run: every session comes from here. A test of what the
    lifespan opens (the health probes' own connections) uses `tests.in_process.app_client`.
    """

    def on_the_tests_connection(read_only: bool) -> Callable[[], AsyncIterator[AsyncSession]]:
        async def session_of_this_request() -> AsyncIterator[AsyncSession]:
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

        return session_of_this_request

    app.dependency_overrides[read_session] = on_the_tests_connection(read_only=True)
    app.dependency_overrides[snapshot_session] = on_the_tests_connection(read_only=True)
    app.dependency_overrides[write_session] = on_the_tests_connection(read_only=False)
    # Not closed: over ASGITransport a client holds nothing, and a sync fixture spares a
    # trip through the event loop per test.
    yield AsyncClient(transport=ASGITransport(app), base_url="http://test")
    app.dependency_overrides.clear()


@pytest.fixture
def url_for(app: FastAPI) -> Callable[..., str]:
    """`url_for("read_user", user_id=1)`: tests follow the routes, not hand-written paths."""
    return lambda name, **params: str(app.url_path_for(name, **params))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The fuzzer imports schemathesis and hypothesis, seconds in every process: not even
    # collected when the slow tests are left out (a bare `pytest -n auto`, `make test`).
    if collection_path.name == "test_fuzz.py" and config.option.markexpr == "not slow":
        return True
    return None
