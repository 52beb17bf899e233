"""Reads routed by DATABASE_READ_URL when no standby is fit, and the consistency token's
edges: what runs against any server (the proofs on a real standby are in
scaleout/test_standbys.py)."""

import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from httpx import AsyncClient
from in_process import app_client, settings_for
from pg_harness.processes import free_port
from probe.factory import create_app
from probe.routes import router
from probe.session import sessionmanager
from scaleout.probes import (
    PROBES,
    add_probe,
    found,
    operator_readiness,
    read_probe,
    readiness_when,
)
from sqlalchemy.engine import URL

SERVER = "X-Read-Server"
TOKEN = "X-Consistency-Token"


@pytest.fixture
def primary(fresh_database: URL) -> URL:
    """The probe's database, migrated: a primary for the standby to follow."""
    return fresh_database


async def polled() -> dict[str, Any]:
    """Readiness details, with the first standby as `standby`, once it has been polled."""
    ready = await readiness_when(lambda state: state != "unknown")
    return dict(ready, standby=ready["standbys"][0])


async def test_a_standby_that_refuses_connections_leaves_reads_on_the_primary(
    primary: URL,
) -> None:
    nowhere = primary.set(port=free_port())
    settings = settings_for(primary, database_read_url=[nowhere], db_standby_poll_interval=0.05)
    async with app_client(create_app(settings)) as client:
        probe_id, token = await add_probe(client)
        ready = await polled()
        read = await read_probe(client, probe_id)
        with_token = await read_probe(client, probe_id, token)

    assert ready["status"] == "degraded"
    assert ready["standby"] == {
        "name": "standby-0",
        "state": "down",
        "lag_bytes": None,
        "reason": "DatabaseUnavailableError: ConnectionRefusedError",
    }
    assert (read.status_code, read.headers[SERVER]) == (200, "primary")
    assert (with_token.status_code, with_token.headers[SERVER]) == (200, "primary")
    assert read.json()["on_standby"] is False


async def test_a_standby_gone_since_the_last_poll_costs_the_read_nothing(primary: URL) -> None:
    nowhere = primary.set(port=free_port())
    settings = settings_for(primary, database_read_url=[nowhere], db_standby_poll_interval=3600)
    async with app_client(create_app(settings)) as client:
        probe_id, _ = await add_probe(client)
        await polled()
        # As if it had answered the last poll and gone away since.
        standby = sessionmanager.standbys[0]
        standby.state, standby.out_until = "ok", 0
        read = await read_probe(client, probe_id)
        ready = await operator_readiness()
        standby.state, standby.out_until = "ok", 0
        core = await client.get(router.url_path_for("read_probe_core", probe_id=probe_id))

    assert read.status_code == 200, read.text
    assert read.headers[SERVER] == "primary"
    assert read.json()["on_standby"] is False
    assert ready["standbys"][0]["state"] == "down"
    # Core on session.connection(): the checkout fails over too.
    assert core.status_code == 200, core.text
    assert core.headers[SERVER] == "primary"


async def test_a_busy_standby_pool_sends_the_read_to_the_primary_and_stays_in(
    primary: URL,
) -> None:
    # The primary named as a standby, and made to look like one: what is tested is the
    # pool of one connection that a slow read holds.
    settings = settings_for(
        primary,
        database_read_url=[primary],
        db_standby_poll_interval=3600,
        db_standby_pool_size=1,
        db_pool_timeout=0.2,
    )
    async with app_client(create_app(settings)) as client:
        probe_id, _ = await add_probe(client)
        await polled()
        standby = sessionmanager.standbys[0]
        standby.state = "ok"
        reads = {}

        async def read(name: str, pause: float) -> None:
            reads[name] = await read_probe(client, probe_id, pause=pause)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read, "slow", 1)
            await anyio.sleep(0.1)
            tasks.start_soon(read, "waiting", 0)

    assert reads["slow"].headers[SERVER] == "standby-0"
    assert (reads["waiting"].status_code, reads["waiting"].headers[SERVER]) == (200, "primary")
    assert standby.state == "ok", "busy is not down"


async def test_a_standby_that_never_answers_fails_its_poll_and_holds_up_no_other(
    primary: URL,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        hung = primary.set(port=silent.getsockname()[1])
        settings = settings_for(
            primary,
            database_read_url=[hung, primary],
            db_standby_poll_interval=0.05,
            db_connect_timeout=0.5,
        )
        async with app_client(create_app(settings)):
            with anyio.fail_after(0.4):  # the other is polled while the first hangs
                while sessionmanager.standbys[1].state == "unknown":  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            with anyio.fail_after(5):
                while sessionmanager.standbys[0].state == "unknown":  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            states = [(s.state, s.reason) for s in sessionmanager.standbys]

    assert states == [
        ("down", "DatabaseUnavailableError: TimeoutError"),
        ("not a standby", "not in recovery"),
    ]


async def test_a_read_url_that_names_a_primary_gets_no_reads(primary: URL) -> None:
    settings = settings_for(primary, database_read_url=[primary], db_standby_poll_interval=0.05)
    async with app_client(create_app(settings)) as client:
        probe_id, _ = await add_probe(client)
        ready = await polled()
        read = await read_probe(client, probe_id)

    assert ready["standby"]["state"] == "not a standby"
    assert read.headers[SERVER] == "primary"


@pytest.fixture
async def without_standbys(primary: URL) -> AsyncIterator[AsyncClient]:
    async with app_client(create_app(settings_for(primary))) as client:
        yield client


async def test_without_standbys_no_token_is_handed_out(without_standbys: AsyncClient) -> None:
    response = await without_standbys.post(PROBES, headers={TOKEN: "0/0"})

    assert response.status_code == 201
    assert TOKEN not in response.headers
    assert SERVER not in (await read_probe(without_standbys, response.json()["id"])).headers


@pytest.mark.parametrize(
    "token", ["nonsense", "1/2/3", "0/" + "F" * 9, "0/0 ", "A" * 8000, "0/0;DROP TABLE x"]
)
async def test_a_malformed_token_is_a_400(without_standbys: AsyncClient, token: str) -> None:
    probe_id, _ = await add_probe(without_standbys)

    response = await read_probe(without_standbys, probe_id, token)

    assert response.status_code == 400
    assert TOKEN in response.json()["detail"]
    assert token.strip() not in response.text


async def test_a_malformed_token_on_a_write_is_a_400_and_writes_nothing(
    without_standbys: AsyncClient,
) -> None:
    before, _ = await add_probe(without_standbys)

    refused = await without_standbys.post(PROBES, headers={TOKEN: "nonsense"})
    after, _ = await add_probe(without_standbys)

    assert refused.status_code == 400
    assert after == before + 1, "the refused request inserted no row"


async def test_a_well_formed_token_without_standbys_reads_on_the_primary(
    without_standbys: AsyncClient,
) -> None:
    probe_id, _ = await add_probe(without_standbys)

    response = await read_probe(without_standbys, probe_id, "FFFFFFFF/FFFFFFFF")

    assert response.status_code == 200
    assert response.json() == found(probe_id, on_standby=False)
