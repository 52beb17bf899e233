"""Each kind of failure made to happen for real, with its answer and its log line.

The code's bugs answer 500 with a traceback in the log and no value in it; the database
really away answers 503 with Retry-After; a row gone meanwhile answers 404 or 409.
"""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from in_process import app_client, settings_for
from probe.dependencies import ReadSession
from probe.factory import create_app
from probe.models import Probe
from probe.routes import router
from probe.settings import ProbeSettings
from sqlalchemy import Integer, bindparam, event, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

SECRET = "hunter2-parameter-value"
INTERNAL_ERROR = {"detail": "internal error"}


def with_broken_routes(app: FastAPI) -> FastAPI:
    @app.get("/bug/lazy-load")
    async def lazy_load(session: ReadSession) -> int:
        probe = await session.scalar(select(Probe).limit(1))  # forgot selectinload(Probe.items)
        assert probe is not None
        return len(probe.items)

    @app.get("/bug/missing-greenlet")
    async def missing_greenlet(session: ReadSession) -> int:
        # Synchronous I/O outside SQLAlchemy's greenlet: what a lazy load in a property does.
        return len(session.sync_session.execute(select(Probe)).all())

    @app.get("/bug/undefined-table")
    async def undefined_table(session: ReadSession) -> None:
        await session.execute(text("SELECT * FROM no_such_table WHERE name = :n"), {"n": SECRET})

    @app.get("/bug/no-result")
    async def no_result(session: ReadSession) -> None:
        (await session.scalars(select(Probe).where(Probe.id == -1))).one()

    # What validation missed, refused by the database: the server's message quotes it.
    @app.get("/missed/server-side")
    async def server_side(session: ReadSession) -> None:
        await session.execute(text("SELECT CAST(:v AS integer)"), {"v": SECRET})

    # ... refused by asyncpg before sending: its message quotes it too.
    @app.get("/missed/client-side")
    async def client_side(session: ReadSession) -> None:
        as_int = text("SELECT :v").bindparams(bindparam("v", type_=Integer))
        await session.execute(as_int, {"v": SECRET})

    return app


@pytest.fixture(scope="module")
def app(app_settings: ProbeSettings) -> FastAPI:
    """The app with broken routes; the `client` fixture serves it on the test's connection."""
    return with_broken_routes(create_app(app_settings))


def every_log_line(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "".join(record.exc_text or "" for record in caplog.records)


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ("/bug/lazy-load", "InvalidRequestError"),
        ("/bug/missing-greenlet", "MissingGreenlet"),
        ("/bug/undefined-table", "ProgrammingError (sqlstate 42P01)"),
    ],
)
async def test_a_bug_is_a_500_with_its_traceback_in_the_log_and_no_value(
    client: AsyncClient, probe: Probe, caplog: pytest.LogCaptureFixture, route: str, error: str
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await client.get(route)

    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR
    assert "Retry-After" not in response.headers
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert line.getMessage().startswith(f"GET {route} failed with {error}\nTraceback")
    assert SECRET not in every_log_line(caplog)


@pytest.mark.parametrize("route", ["/missed/server-side", "/missed/client-side"])
async def test_a_value_the_database_refuses_is_a_422_that_quotes_nothing(
    client: AsyncClient, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await client.get(route)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "refused_by_database"
    assert SECRET not in response.text
    assert SECRET not in every_log_line(caplog)
    assert f"GET {route} answered 422" in caplog.text


async def test_no_result_where_one_was_required_is_a_404(client: AsyncClient) -> None:
    response = await client.get("/bug/no-result")

    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}


@contextmanager
def deleted_before_the_update(probe_id: int) -> Iterator[None]:
    """Another request's DELETE lands between this PATCH's read and its UPDATE."""

    def delete_first(session: Session, *_: object) -> None:
        session.connection().execute(text("DELETE FROM probe WHERE id = :id"), {"id": probe_id})

    event.listen(Session, "before_flush", delete_first)
    try:
        yield
    finally:
        event.remove(Session, "before_flush", delete_first)


async def test_a_row_deleted_between_read_and_write_is_a_409(
    client: AsyncClient, session: AsyncSession, probe: Probe
) -> None:
    probe_id = probe.id

    with deleted_before_the_update(probe_id):
        path = router.url_path_for("update_probe", probe_id=probe_id)
        response = await client.patch(path, json={"name": "Ann B"})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "changed or deleted by another request meanwhile; read it again"
    }
    # The request's rollback undid its own work, the DELETE it raced included.
    assert await session.scalar(select(Probe.name).where(Probe.id == probe_id)) == "Ann"


# The database away, and a handler's own timeout: on the app's real engines and pools.


@asynccontextmanager
async def serving(settings: ProbeSettings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)

    @app.get("/sleep")
    async def sleep(session: ReadSession) -> None:
        await session.execute(text("SELECT pg_sleep(5)"))

    @app.get("/handler-timeout")
    async def handler_timeout(session: ReadSession) -> None:
        async with asyncio.timeout(0.2):
            await session.execute(text("SELECT pg_sleep(5)"))

    async with app_client(app) as client:
        yield client


def assert_unavailable(response: Response, caplog: pytest.LogCaptureFixture, error: str) -> None:
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable; try again"}
    assert response.headers["Retry-After"] == "1"
    assert f"answered 503: {error}" in caplog.text


async def test_a_refused_connection_is_a_503_with_retry_after(
    database_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        async with serving(settings_for(database_url.set(port=port))) as client:
            response = await client.get("/probes")

    assert_unavailable(response, caplog, "DatabaseUnavailableError")


async def test_a_server_that_never_answers_the_connect_is_a_503(
    database_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    async def say_nothing(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep(10)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    settings = settings_for(database_url.set(port=port), db_connect_timeout=0.3)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, say_nothing)
        with anyio.fail_after(5):
            async with serving(settings) as client:
                response = await client.get("/probes")
        tasks.cancel_scope.cancel()

    assert_unavailable(response, caplog, "DatabaseUnavailableError")


TERMINATE_SLEEPER = text(
    "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = :db AND query = 'SELECT pg_sleep(5)' AND pid <> pg_backend_pid()"
)


async def test_a_server_ending_the_session_is_a_503(
    fresh_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    # Autocommit: each poll of pg_stat_activity sees a fresh snapshot.
    admin = create_async_engine(fresh_database, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    responses = []
    try:
        async with serving(settings_for(fresh_database)) as client:

            async def sleep() -> None:
                responses.append(await client.get("/sleep"))

            async with anyio.create_task_group() as tasks, admin.connect() as connection:
                tasks.start_soon(sleep)
                with anyio.fail_after(4):  # before the sleep would end by itself
                    while not await connection.scalar(  # noqa: ASYNC110 - polls the server
                        TERMINATE_SLEEPER, {"db": fresh_database.database}
                    ):
                        await anyio.sleep(0.05)
    finally:
        await admin.dispose()

    [response] = responses
    # 57P01 if asyncpg read the server's last word before the socket closed, else 08003.
    assert_unavailable(response, caplog, "DBAPIError (sqlstate ")
    assert "sqlstate 57P01" in caplog.text or "sqlstate 08003" in caplog.text


async def test_a_handlers_own_timeout_is_a_500_not_an_outage(
    fresh_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(settings_for(fresh_database)) as client:
        response = await client.get("/handler-timeout")
        after = await client.get("/probes")

    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR
    assert "GET /handler-timeout failed with TimeoutError" in caplog.text
    assert after.status_code == 200
