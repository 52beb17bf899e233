"""What a handler's session allows, on the app's own engines and lifespan (real commits):
`ReadSession` reads as SQLAlchemy reads (streams, `yield_per`, several statements),
`SnapshotSession` sees one snapshot, and `WriteSession` writes whatever the HTTP method."""

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from in_process import app_client
from probe.dependencies import ReadSession, SnapshotSession, WriteSession
from probe.factory import create_app
from probe.models import Probe
from probe.settings import ProbeSettings
from sqlalchemy import select, text

NAMES = [f"stream {n}" for n in range(5)]
# Two statements of one session, a moment apart: the same now() means one transaction.
NOW_TWICE = "SELECT now()", "SELECT pg_sleep(0.01), now()"


@pytest.fixture
async def client(app_settings: ProbeSettings) -> AsyncIterator[AsyncClient]:
    # One read connection: each test's later reads reuse the one a stream ran on.
    app = create_app(app_settings.model_copy(update={"db_read_pool_size": 1}))

    @app.get("/test/stream")
    async def stream_names(session: ReadSession) -> list[str | None]:
        query = select(Probe.name).where(Probe.name.in_(NAMES)).order_by(Probe.name)
        return [name async for name in await session.stream_scalars(query)]

    @app.get("/test/yield-per")
    async def yield_per_names(session: ReadSession) -> list[str | None]:
        query = select(Probe).where(Probe.name.in_(NAMES)).order_by(Probe.id)
        result = await session.stream_scalars(query.execution_options(yield_per=2))
        return [probe.name async for probe in result]

    @app.get("/test/one-transaction")
    async def one_transaction(session: ReadSession) -> bool:
        first = await session.scalar(text(NOW_TWICE[0]))
        second = (await session.execute(text(NOW_TWICE[1]))).one()[1]
        return bool(first == second)

    @app.get("/test/snapshot")
    async def snapshot(session: SnapshotSession) -> dict[str, object]:
        isolation = await session.scalar(text("SHOW transaction_isolation"))
        read_only = await session.scalar(text("SHOW transaction_read_only"))
        first = await session.scalar(text(NOW_TWICE[0]))
        second = (await session.execute(text(NOW_TWICE[1]))).one()[1]
        return {"isolation": isolation, "read_only": read_only, "one": first == second}

    # A GET that must write says so: get-or-create.
    @app.get("/test/get-or-create")
    async def get_or_create(session: WriteSession) -> int:
        probe = await session.scalar(select(Probe).where(Probe.name == NAMES[0]))
        if probe is None:
            probe = Probe(name=NAMES[0])
            session.add(probe)
            await session.commit()
        return probe.id

    async with app_client(app) as client:
        yield client


@pytest.fixture
async def probes(client: AsyncClient) -> AsyncIterator[list[int]]:
    ids = []
    for name in NAMES:
        created = await client.post("/probes", json={"name": name})
        assert created.status_code == 201
        ids.append(created.json()["id"])
    yield ids
    for probe_id in ids:
        await client.delete(f"/probes/{probe_id}")


async def test_a_read_session_streams_and_its_connection_returns_to_autocommit(
    client: AsyncClient, probes: list[int], app_settings: ProbeSettings
) -> None:
    streamed = await client.get("/test/stream")
    after = await client.get("/test/one-transaction")

    assert streamed.status_code == 200
    assert streamed.json() == sorted(NAMES)
    # The next read on that connection: a statement each, in autocommit. Behind PgBouncer
    # (TEST_PGBOUNCER=1) the read pool has no autocommit: each read session is one read-only
    # transaction, which its SET LOCAL timeouts need (pg_runtime.engine).
    assert after.json() is app_settings.db_behind_pgbouncer


async def test_a_read_session_reads_with_yield_per(client: AsyncClient, probes: list[int]) -> None:
    response = await client.get("/test/yield-per")

    assert response.status_code == 200
    assert response.json() == NAMES


async def test_a_snapshot_session_reads_one_read_only_snapshot(client: AsyncClient) -> None:
    response = await client.get("/test/snapshot")

    assert response.status_code == 200
    assert response.json() == {"isolation": "repeatable read", "read_only": "on", "one": True}


async def test_a_get_with_a_write_session_writes(
    client: AsyncClient, app_settings: ProbeSettings
) -> None:
    created = await client.get("/test/get-or-create")
    again = await client.get("/test/get-or-create")
    try:
        assert created.status_code == 200
        assert again.json() == created.json()
        read = await client.get(f"/probes/{created.json()}")
        assert read.json()["name"] == NAMES[0]
    finally:
        await client.delete(f"/probes/{created.json()}")
