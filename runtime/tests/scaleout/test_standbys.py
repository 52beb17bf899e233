"""Reads from a real streaming standby (`pg_basebackup -R` of the run's embedded server):
routed there, kept consistent with the client's own writes by WAL position, and never
failed for the standby's sake. With TEST_DATABASE_URL these skip: the embedded
PostgreSQL cannot follow another major version's server.
"""

import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest
from httpx import AsyncClient
from in_process import app_client, settings_for
from migration_runner.test_cli import alembic
from observability.scrape import this_process, value
from pg_harness.embedded.standby import Standby
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.server import RunDatabases
from pg_harness.urls import connected
from probe.factory import create_app
from probe.settings import ProbeSettings
from sqlalchemy.engine import URL

from scaleout.probes import add_probe, found, operator_readiness, read_probe, readiness_when

# Real servers, started per test: a proof of the runtime's claims, run by `make check-runtime`.
pytestmark = pytest.mark.slow

SERVER = "X-Read-Server"


def standby_settings(primary: URL, standby: URL, **settings: object) -> ProbeSettings:
    # Polled often and forgiven soon, so that a test sees each turn within a second.
    return settings_for(
        primary,
        database_read_url=[standby],
        db_standby_poll_interval=0.05,
        db_standby_retry_after=0.3,
        **settings,
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110 (polls the app)
            await anyio.sleep(0.02)


async def until_state(state: str) -> None:
    await readiness_when(lambda reached: reached == state)


@pytest.fixture
def primary(fresh_database: URL) -> URL:
    """The probe's database, migrated: a primary for the standby to follow."""
    return fresh_database


@pytest.fixture
async def client(primary: URL, standby: Standby) -> AsyncIterator[AsyncClient]:
    await standby.wait_caught_up()
    async with app_client(
        create_app(standby_settings(primary, standby.url(primary.database or "")))
    ) as client:
        await until_state("ok")
        yield client


async def test_reads_go_to_the_standby_and_writes_to_the_primary(
    client: AsyncClient, standby: Standby
) -> None:
    probe_id, token = await add_probe(client)
    _, not_asked = await add_probe(client, token=None)
    await standby.wait_caught_up()

    response = await read_probe(client, probe_id)

    assert not_asked is None, "a client that carries no token is handed none"
    assert response.status_code == 200
    assert response.json() == found(probe_id, on_standby=True)
    assert response.headers[SERVER] == "standby-0"
    assert token is not None, "a write hands out its WAL position"
    scrape = this_process()
    assert value(scrape, "db_reads_total", server="standby-0") >= 1
    assert value(scrape, "db_standby_serving", standby="standby-0") == 1
    ready = await operator_readiness()
    assert (ready["status"], ready["standbys"][0]["state"]) == ("ready", "ok")
    assert ready["standbys"][0]["lag_bytes"] >= 0


async def test_a_fresh_token_is_read_on_the_primary_while_replay_is_paused(
    client: AsyncClient, standby: Standby
) -> None:
    await standby.pause_replay()
    probe_id, token = await add_probe(client)
    assert token is not None

    with_token = await read_probe(client, probe_id, token)
    without_token = await read_probe(client, probe_id)

    # The token's write is not on the standby yet: the primary answers, with the row.
    assert with_token.status_code == 200, with_token.text
    assert with_token.json() == found(probe_id, on_standby=False)
    assert with_token.headers[SERVER] == "primary"
    # Without one, a standby within DB_STANDBY_MAX_LAG answers: the row is not there yet.
    assert without_token.status_code == 404
    assert without_token.headers[SERVER] == "standby-0"

    await standby.resume_replay()
    await standby.wait_caught_up()

    async def standby_has_it() -> bool:
        response = await read_probe(client, probe_id, token)
        return response.headers[SERVER] == "standby-0" and response.status_code == 200

    await eventually(standby_has_it)


async def test_a_standby_lagging_past_the_bound_is_skipped(primary: URL, standby: Standby) -> None:
    await standby.wait_caught_up()
    settings = standby_settings(
        primary, standby.url(primary.database or ""), db_standby_max_lag=64 * 1024
    )
    async with app_client(create_app(settings)) as client:
        await until_state("ok")
        probe_id, _ = await add_probe(client)
        await standby.pause_replay()
        await add_rows(primary, 5000)  # some hundreds of kB of WAL
        await until_state("lagging")

        response = await read_probe(client, probe_id)
        ready = await operator_readiness()

        assert response.status_code == 200
        assert response.headers[SERVER] == "primary"
        assert ready["status"] == "degraded"
        assert ready["standbys"][0]["lag_bytes"] > 64 * 1024

        await standby.resume_replay()
        await until_state("ok")
        assert (await read_probe(client, probe_id)).headers[SERVER] == "standby-0"


async def test_the_standby_stopped_mid_load_fails_no_request_and_comes_back(
    client: AsyncClient, standby: Standby
) -> None:
    probe_id, _ = await add_probe(client)
    await standby.wait_caught_up()
    statuses: Counter[int] = Counter()
    servers: Counter[str] = Counter()

    async def reader() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            response = await read_probe(client, probe_id)
            statuses[response.status_code] += 1
            servers[response.headers[SERVER]] += 1

    async with anyio.create_task_group() as readers:
        for _ in range(8):
            readers.start_soon(reader)
        await anyio.sleep(1)
        await anyio.to_thread.run_sync(standby.halt)
        await anyio.sleep(1)
        ready = await client.get("/health/ready")
        details = await operator_readiness()
        await anyio.to_thread.run_sync(standby.resume)

    assert dict(statuses) == {200: sum(statuses.values())}, dict(statuses)
    assert servers["standby-0"] > 0, dict(servers)
    assert servers["primary"] > 0, dict(servers)
    # Down, reads on the primary, and still ready: degraded, with the reason.
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reason": None})
    assert details["status"] == "degraded"
    assert details["standbys"][0]["state"] == "down"
    assert details["standbys"][0]["reason"]
    # Back by itself: no restart of the app.
    await until_state("ok")
    assert (await read_probe(client, probe_id)).headers[SERVER] == "standby-0"


async def test_a_read_cut_off_on_the_standby_is_retried_on_the_primary(
    client: AsyncClient, standby: Standby
) -> None:
    probe_id, _ = await add_probe(client)
    await standby.wait_caught_up()

    async def terminate_the_read() -> None:
        await anyio.sleep(0.3)
        ended = await standby_admin_scalar(
            standby,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE state = 'active'"
            " AND query LIKE '%FROM probe WHERE%' AND pid <> pg_backend_pid()",
        )
        assert ended == 1

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(terminate_the_read)
        response = await read_probe(client, probe_id, pause=1)

    # 57P01 on the standby; the same statement, once more, on the primary.
    assert response.status_code == 200, response.text
    assert response.json() == found(probe_id, on_standby=False)
    assert response.headers[SERVER] == "primary"


async def add_rows(database_url: URL, rows: int) -> None:
    async with connected(database_url) as connection:
        await connection.execute(
            "INSERT INTO probe (id) SELECT g FROM generate_series(1000000, $1) AS g",
            1000000 + rows - 1,
        )


async def standby_admin_scalar(standby: Standby, query: str) -> object:
    async with connected(standby.url()) as connection:
        return await connection.fetchval(query)


async def test_reads_through_a_pgbouncer_in_front_of_each_server(
    primary: URL, standby: Standby, run_databases: RunDatabases
) -> None:
    require_pgbouncer()
    await standby.wait_caught_up()
    standby_url = standby.url(primary.database or "")
    # To the primary as the run's app and reader roles; to the standby as its admin.
    to_primary = PgBouncer(primary, users=run_databases.roles.passwords)
    to_standby = PgBouncer(standby_url)
    with to_primary, to_standby:
        settings = standby_settings(
            to_primary.url_for(primary),
            to_standby.url_for(standby_url),
            db_behind_pgbouncer=True,
            db_pgbouncer_prepared_statements=to_primary.tracks_prepared_statements,
            direct_url=primary,
        )
        async with app_client(create_app(settings)) as client:
            await until_state("ok")
            probe_id, _ = await add_probe(client)
            await standby.wait_caught_up()
            on_standby = await read_probe(client, probe_id)
            await standby.pause_replay()
            fresh_id, token = await add_probe(client)
            with_token = await read_probe(client, fresh_id, token)
            await standby.resume_replay()

    assert on_standby.json() == found(probe_id, on_standby=True)
    assert on_standby.headers[SERVER] == "standby-0"
    assert with_token.json() == found(fresh_id, on_standby=False)
    assert with_token.headers[SERVER] == "primary"


async def test_a_promoted_standby_gets_no_reads(client: AsyncClient, standby: Standby) -> None:
    probe_id, _ = await add_probe(client)
    await standby.wait_caught_up()

    await standby_admin_scalar(standby, "SELECT pg_promote()")
    await until_state("not a standby")
    response = await read_probe(client, probe_id)

    assert response.headers[SERVER] == "primary"
    assert (await operator_readiness())["status"] == "degraded"


async def test_migrations_run_on_the_primary_only(empty_database: URL, standby: Standby) -> None:
    await standby.wait_caught_up()

    status, output = await alembic(
        "upgrade",
        "head",
        database_url=empty_database,
        database_read_url=standby.url(empty_database.database or ""),
    )

    # On the standby, the first CREATE TABLE would have failed: read-only transaction.
    assert status == 0, output
