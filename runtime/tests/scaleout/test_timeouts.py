"""Statement and idle-in-transaction timeouts, on a direct connection and through PgBouncer.

Direct, they are startup parameters; through PgBouncer (which refuses those) they are
set per transaction with SET LOCAL, so they never stay on a shared server connection.
The app here gets a few routes of the test's own that misbehave on purpose.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from in_process import app_client, settings_for
from observability.scrape import this_process, value
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.server import RunDatabases
from pg_runtime.testing import role_urls
from probe.dependencies import ReadSession, WriteSession
from probe.factory import create_app
from probe.session import sessionmanager
from probe.settings import ProbeSettings
from sqlalchemy import event, text
from sqlalchemy.engine import URL

# Real processes and servers: a proof of the runtime's claims, run by `make check-runtime`.
pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT = 0.5
IDLE_IN_TRANSACTION_TIMEOUT = 0.5


@pytest.fixture(params=["direct", "pgbouncer"])
def through_pgbouncer(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "pgbouncer")


@pytest.fixture
def app_database_url(
    through_pgbouncer: bool, run_databases: RunDatabases, fresh_database: URL
) -> Iterator[URL]:
    if not through_pgbouncer:
        yield fresh_database
        return
    require_pgbouncer()
    # One server connection: every transaction of every client lands on it.
    with PgBouncer(
        run_databases.admin_url, users=run_databases.roles.passwords, pool_size=1
    ) as bouncer_url:
        yield fresh_database.set(port=bouncer_url.port)


def misbehaving_app(settings: ProbeSettings) -> FastAPI:
    app = create_app(settings)

    @app.get("/slow")
    async def slow(session: ReadSession) -> None:
        await session.execute(text("SELECT pg_sleep(:s)"), {"s": STATEMENT_TIMEOUT * 4})

    # A POST: a GET's session reads in autocommit, with no transaction to leave idle.
    @app.post("/idle")
    async def idle(session: WriteSession) -> None:
        await session.execute(text("SELECT 1"))
        await anyio.sleep(IDLE_IN_TRANSACTION_TIMEOUT * 3)  # holds the transaction open
        await session.execute(text("SELECT 1"))

    @app.get("/timeouts")
    async def timeouts(session: ReadSession) -> dict[str, str]:
        names = ("statement_timeout", "idle_in_transaction_session_timeout")
        return {name: (await session.scalar(text(f"SHOW {name}"))) or "" for name in names}

    return app


@asynccontextmanager
async def serving(
    url: URL, through_pgbouncer: bool, pool_timeout: float = 10
) -> AsyncIterator[AsyncClient]:
    # As the run's app and reader roles, DIRECT_URL the owner (not used here; PgBouncer
    # mode requires one).
    settings = settings_for(
        url,
        db_pool_timeout=pool_timeout,
        db_behind_pgbouncer=through_pgbouncer,
        db_statement_timeout=STATEMENT_TIMEOUT,
        db_idle_in_transaction_timeout=IDLE_IN_TRANSACTION_TIMEOUT,
        # One connection: the requests after a timeout must be served by it (or its
        # replacement) for the test to mean anything.
        db_pool_size=1,
        db_read_pool_size=1,
        db_max_overflow=0,
    )
    app = misbehaving_app(settings)
    async with app_client(app) as client:
        yield client


async def test_every_transaction_runs_with_the_timeouts(
    app_database_url: URL, through_pgbouncer: bool
) -> None:
    async with serving(app_database_url, through_pgbouncer) as client:
        answers = [(await client.get("/timeouts")).json() for _ in range(3)]

    expected = {"statement_timeout": "500ms", "idle_in_transaction_session_timeout": "500ms"}
    assert answers == [expected] * 3


async def test_a_statement_over_the_timeout_is_a_504_and_its_connection_is_reused(
    app_database_url: URL, through_pgbouncer: bool
) -> None:
    async with serving(app_database_url, through_pgbouncer) as client:
        await client.get("/timeouts")  # the pool's one connection, made before we count
        connects: list[object] = []
        reads = sessionmanager.read_engine  # GET requests read through it
        event.listen(reads.sync_engine, "connect", lambda *_: connects.append(1))

        with anyio.fail_after(STATEMENT_TIMEOUT * 3):  # not the 2 s the statement asks for
            response = await client.get("/slow")
        after = await client.get("/timeouts")

        pool = reads.pool
        assert (pool.checkedout(), pool.checkedin()) == (0, 1)  # type: ignore[attr-defined]
    assert response.status_code == 504
    assert response.json() == {"detail": "the database took too long to answer"}
    assert after.status_code == 200
    assert connects == [], "the connection was discarded after a timeout; it is healthy"


async def test_a_transaction_left_idle_is_ended_and_the_next_request_succeeds(
    app_database_url: URL, through_pgbouncer: bool
) -> None:
    async with serving(app_database_url, through_pgbouncer) as client:
        idle = await client.post("/idle")
        after = await client.get("/timeouts")

    assert idle.status_code == 503
    assert idle.json() == {"detail": "database unavailable; try again"}
    assert after.status_code == 200


async def test_no_free_connection_within_the_pool_timeout_is_a_503(
    app_database_url: URL, through_pgbouncer: bool
) -> None:
    async with serving(app_database_url, through_pgbouncer, pool_timeout=0.2) as client:
        before = this_process()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.get, "/slow")  # holds the only connection for 0.5 s
            await anyio.sleep(0.1)
            busy = await client.get("/timeouts")
        after = await client.get("/timeouts")
        scrape = this_process()

    assert busy.status_code == 503
    assert busy.json() == {"detail": "database busy; try again"}
    assert after.status_code == 200
    # Counted, and its wait measured, in the pool's metrics.
    timeouts = "db_pool_timeouts_total"
    assert value(scrape, timeouts, pool="read") - value(before, timeouts, pool="read") == 1
    waited = "db_pool_wait_seconds_sum"
    assert value(scrape, waited, pool="read") - value(before, waited, pool="read") >= 0.2


async def test_timeouts_set_through_pgbouncer_stay_in_their_transaction(
    run_databases: RunDatabases, fresh_database: URL
) -> None:
    require_pgbouncer()
    with PgBouncer(
        run_databases.admin_url, users=run_databases.roles.passwords, pool_size=1
    ) as bouncer_url:
        url = fresh_database.set(port=bouncer_url.port)
        async with serving(url, through_pgbouncer=True) as client:
            assert (await client.get("/timeouts")).status_code == 200
            # Another client, outside any transaction, on the same (only) server connection
            # (PgBouncer's pools are per user: the reader's, which the GET read through).
            reader = role_urls(url)["database_reader_url"]
            other = await asyncpg.connect(
                host=reader.host,
                port=reader.port,
                user=reader.username,
                password=reader.password,
                database=reader.database,
                statement_cache_size=0,
            )
            try:
                seen_by_other = await other.fetchval("SHOW statement_timeout")
            finally:
                await other.close()

    assert seen_by_other == "0", "the app's statement_timeout leaked to another client"
