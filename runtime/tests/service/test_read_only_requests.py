"""GET requests read through a connection the server keeps read-only: a write of any kind
in a GET handler (ORM, Core, raw SQL) stores nothing and answers 500.

These run the app's own engines and pools on the app's settings (direct, or through
PgBouncer with TEST_PGBOUNCER=1), with real commits, unlike the rolled-back API tests.
"""

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from in_process import app_client
from probe.dependencies import ReadSession
from probe.factory import create_app
from probe.models import Probe
from probe.settings import ProbeSettings
from sqlalchemy import delete, func, insert, select, text

NAME = "get writes"


@pytest.fixture
async def client(app_settings: ProbeSettings) -> AsyncIterator[AsyncClient]:
    app = create_app(app_settings)

    @app.get("/test/count")
    async def count(session: ReadSession) -> int:
        return await session.scalar(select(func.count()).select_from(Probe)) or 0

    @app.get("/test/write")
    async def write(session: ReadSession) -> None:
        session.add(Probe(name=NAME))
        await session.commit()

    @app.get("/test/delete")
    async def delete_all(session: ReadSession) -> None:
        await session.execute(delete(Probe))
        await session.commit()

    # Past the ORM's refusal: only the server stands in the way.
    @app.get("/test/core-insert")
    async def core_insert(session: ReadSession) -> None:
        connection = await session.connection()
        await connection.execute(insert(Probe).values(name=NAME))
        await session.commit()

    @app.get("/test/raw-sql")
    async def raw_sql(session: ReadSession) -> None:
        await session.execute(text("DELETE FROM probe_item"))
        await session.execute(text("DELETE FROM probe"))
        await session.commit()

    async with app_client(app) as client:
        yield client


async def test_a_get_reads(client: AsyncClient) -> None:
    created = await client.post("/probes", json={"name": NAME})
    try:
        assert created.status_code == 201
        response = await client.get(f"/probes/{created.json()['id']}")
        assert response.status_code == 200
        assert response.json()["name"] == NAME
    finally:
        await client.delete(f"/probes/{created.json()['id']}")


@pytest.mark.parametrize(
    "route", ["/test/write", "/test/delete", "/test/core-insert", "/test/raw-sql"]
)
async def test_a_get_that_writes_is_refused_and_writes_nothing(
    client: AsyncClient, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = await client.post("/probes", json={"name": "kept"})
    try:
        before = (await client.get("/test/count")).json()
        response = await client.get(route)
        after = (await client.get("/test/count")).json()
    finally:
        await client.delete(f"/probes/{created.json()['id']}")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; nothing was written"}
    assert after == before
    assert after == before >= 1
    assert f"GET {route} failed with" in caplog.text
    assert "Traceback" in caplog.text
