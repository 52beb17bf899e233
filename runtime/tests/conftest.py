"""The probe app under test and its client, on the database fixtures pg-harness gives.

As the template's tests/conftest.py wires its app: the probe's settings for this worker's
database (through the run's PgBouncer when TEST_PGBOUNCER=1), the runtime's kind of
engine, and a client whose every request gets a session of its own on the test's
connection.
"""

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pg_harness.server import RunDatabases
from pg_runtime.engine import create_app_engine
from pg_runtime.testing import forget_developer_settings, sessions_on, settings_through
from probe.dependencies import sessions
from probe.factory import create_app
from probe.models import Probe
from probe.settings import ProbeSettings
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession


def pytest_configure(config: pytest.Config) -> None:
    # Before anything runs, in every process: a developer's settings may name a real
    # database; no test, and no process a test starts, may see them.
    forget_developer_settings(ProbeSettings)


@pytest.fixture(scope="session")
def app_settings(run_databases: RunDatabases, database_url: URL) -> ProbeSettings:
    """The probe's settings for this worker's database, as the run's roles (DIRECT_URL the
    owner, DATABASE_URL the app role, DATABASE_READER_URL the reader): directly, or through
    the run's PgBouncer when TEST_PGBOUNCER=1 (with its statement caches on if that
    PgBouncer tracks prepared statements)."""
    return settings_through(
        ProbeSettings,
        database_url,
        run_databases.pgbouncer_port,
        run_databases.pgbouncer_prepared_statements,
    )


@pytest.fixture(scope="session")
async def engine(app_settings: ProbeSettings) -> AsyncIterator[AsyncEngine]:
    """The runtime's kind of engine, on the app's URL: the tests' sessions see what it sees."""
    assert app_settings.database_url is not None
    engine = create_app_engine(app_settings, app_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(app_settings: ProbeSettings) -> FastAPI:
    return create_app(app_settings)


@pytest.fixture
def client(app: FastAPI, connection: AsyncConnection) -> Iterator[AsyncClient]:
    """An HTTP client for the app. Each request gets a session of its own, as in production,
    on the test's connection: its commits release a savepoint, and the test's rollback
    undoes everything. A `ReadSession` is read-only at the server here too, by SET
    TRANSACTION READ ONLY inside its savepoint (production uses a read-only pool in
    autocommit instead: service/test_read_only_requests.py covers that one).

    The app's lifespan does not run: every session comes from here. A test of what the
    lifespan opens uses `in_process.app_client`.
    """

    app.dependency_overrides |= sessions_on(connection, sessions)
    yield AsyncClient(transport=ASGITransport(app), base_url="http://test")
    app.dependency_overrides.clear()


@pytest.fixture
def url_for(app: FastAPI) -> Callable[..., str]:
    """`url_for("read_probe", probe_id=1)`: tests follow the routes, not hand-written paths."""
    return lambda name, **params: str(app.url_path_for(name, **params))


# Committed, which here only releases a savepoint: a row that was only flushed would share
# the savepoint the app rolls back on a 404, 409 or 422, and vanish with it.
@pytest.fixture
async def probe(session: AsyncSession) -> Probe:
    probe = Probe(name="Ann")
    session.add(probe)
    await session.commit()
    return probe
