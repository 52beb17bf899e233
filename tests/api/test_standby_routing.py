"""Reads routed by DATABASE_READ_URL when no standby is fit, and the consistency token's
edges: what runs against any server (the proofs on a real standby are in
tests/scaleout/test_standbys.py)."""

from collections.abc import AsyncIterator

import anyio
import pytest
from httpx import AsyncClient
from pg_harness.processes import free_port
from sqlalchemy.engine import URL

from orm.session import sessionmanager
from tests.in_process import app_client, settings_for
from tests.scaleout.probes import add_probe, app_with_probes, create_probe_table, read_probe

SERVER = "X-Read-Server"
TOKEN = "X-Consistency-Token"


@pytest.fixture
async def primary(fresh_database: URL) -> URL:
    await create_probe_table(fresh_database)
    return fresh_database


async def polled(client: AsyncClient) -> dict[str, object]:
    """The first standby in readiness, once polled."""
    with anyio.fail_after(10):
        while True:
            ready = (await client.get("/health/ready")).json()
            if ready["standbys"][0]["state"] != "unknown":
                return dict(ready, standby=ready["standbys"][0])
            await anyio.sleep(0.02)


async def test_a_standby_that_refuses_connections_leaves_reads_on_the_primary(
    primary: URL,
) -> None:
    nowhere = primary.set(port=free_port())
    settings = settings_for(primary, database_read_url=[nowhere], db_standby_poll_interval=0.05)
    async with app_client(app_with_probes(settings)) as client:
        probe_id, token = await add_probe(client)
        ready = await polled(client)
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
    async with app_client(app_with_probes(settings)) as client:
        probe_id, _ = await add_probe(client)
        await polled(client)
        # As if it had answered the last poll and gone away since.
        standby = sessionmanager.standbys[0]
        standby.state, standby.out_until = "ok", 0
        read = await read_probe(client, probe_id)
        ready = (await client.get("/health/ready")).json()

    assert read.status_code == 200, read.text
    assert read.headers[SERVER] == "primary"
    assert read.json()["on_standby"] is False
    assert ready["standbys"][0]["state"] == "down"


async def test_a_read_url_that_names_a_primary_gets_no_reads(primary: URL) -> None:
    settings = settings_for(primary, database_read_url=[primary], db_standby_poll_interval=0.05)
    async with app_client(app_with_probes(settings)) as client:
        probe_id, _ = await add_probe(client)
        ready = await polled(client)
        read = await read_probe(client, probe_id)

    assert ready["standby"]["state"] == "not a standby"  # type: ignore[index]
    assert read.headers[SERVER] == "primary"


@pytest.fixture
async def without_standbys(primary: URL) -> AsyncIterator[AsyncClient]:
    async with app_client(app_with_probes(settings_for(primary))) as client:
        yield client


async def test_without_standbys_no_token_is_handed_out(without_standbys: AsyncClient) -> None:
    response = await without_standbys.post("/probes", headers={TOKEN: "0/0"})

    assert response.status_code == 201
    assert TOKEN not in response.headers
    assert SERVER not in (await read_probe(without_standbys, response.json()["id"])).headers


@pytest.mark.parametrize(
    "token", ["nonsense", "1/2/3", "0/" + "F" * 9, "0/0 ", "A" * 8000, "0/0;DROP TABLE x"]
)
async def test_a_malformed_token_is_a_400_with_or_without_standbys(
    without_standbys: AsyncClient, token: str
) -> None:
    probe_id, _ = await add_probe(without_standbys)

    response = await read_probe(without_standbys, probe_id, token)

    assert response.status_code == 400
    assert TOKEN in response.json()["detail"]
    assert token.strip() not in response.text


async def test_a_malformed_token_on_a_write_is_a_400_and_writes_nothing(
    without_standbys: AsyncClient,
) -> None:
    before, _ = await add_probe(without_standbys)

    refused = await without_standbys.post("/probes", headers={TOKEN: "nonsense"})
    after, _ = await add_probe(without_standbys)

    assert refused.status_code == 400
    assert after == before + 1, "the refused request inserted no row"


async def test_a_well_formed_token_without_standbys_reads_on_the_primary(
    without_standbys: AsyncClient,
) -> None:
    probe_id, _ = await add_probe(without_standbys)

    response = await read_probe(without_standbys, probe_id, "FFFFFFFF/FFFFFFFF")

    assert response.status_code == 200
    assert response.json() == {"id": probe_id, "on_standby": False}
