"""The app under test and its client, on the database fixtures pg-harness gives.

pg-harness (harness/README.md) starts the run's PostgreSQL, builds the migrated template
once, and gives `database_url` (this worker's database), `connection` and `session` (a
transaction per test, rolled back), `fresh_database` and `database_at`. Here they are
wired to the app: its settings, its kind of engine, and a client whose every request gets
a session of its own on the test's connection.
"""

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pg_harness.server import RunDatabases
from pg_runtime.engine import create_app_engine
from pg_runtime.testing import forget_developer_settings, sessions_on, settings_through
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.dependencies import sessions
from app.factory import create_app
from app.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    # Before anything runs, in every process: a developer's settings may name a real
    # database; no test, and no process a test starts, may see them.
    forget_developer_settings(Settings)


@pytest.fixture(scope="session")
def app_settings(run_databases: RunDatabases, database_url: URL) -> Settings:
    """The app's settings for this worker's database, as the run's roles (DIRECT_URL the
    owner, DATABASE_URL the app role, DATABASE_READER_URL the reader): directly, or through
    the run's PgBouncer when TEST_PGBOUNCER=1 (with its statement caches on if that
    PgBouncer tracks prepared statements)."""
    return settings_through(
        Settings,
        database_url,
        run_databases.pgbouncer_port,
        run_databases.pgbouncer_prepared_statements,
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

    app.dependency_overrides |= sessions_on(connection, sessions)
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
