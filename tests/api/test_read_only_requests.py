"""GET requests get a read-only session: reads work, a handler that writes stores nothing.

The other API tests swap the session dependency for the test's own; these run the real
one, on the app's own settings (direct, or through PgBouncer with TEST_PGBOUNCER=1).
"""

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, select

from api.dependencies import SessionDep
from app.factory import create_app
from app.settings import Settings
from orm.models import User

EMAIL = "get.writes@example.org"


@pytest.fixture
async def client(app_settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(app_settings)

    @app.get("/test/count")
    async def count(session: SessionDep) -> int:
        return await session.scalar(select(func.count()).select_from(User)) or 0

    @app.get("/test/write")
    async def write(session: SessionDep) -> None:
        session.add(User(email=EMAIL, name="Ann"))
        await session.commit()

    @app.get("/test/delete")
    async def delete_all(session: SessionDep) -> None:
        await session.execute(delete(User))
        await session.commit()

    transport = ASGITransport(app)
    async with LifespanManager(app), AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_a_get_reads(client: AsyncClient) -> None:
    created = await client.post("/users", json={"email": EMAIL, "name": "Ann"})
    try:
        assert created.status_code == 201
        response = await client.get(f"/users/{created.json()['id']}")
        assert response.status_code == 200
        assert response.json()["email"] == EMAIL
    finally:
        await client.delete(f"/users/{created.json()['id']}")


@pytest.mark.parametrize("route", ["/test/write", "/test/delete"])
async def test_a_get_that_writes_is_refused_and_writes_nothing(
    client: AsyncClient, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = await client.post("/users", json={"email": "kept@example.org", "name": "Bo"})
    try:
        before = (await client.get("/test/count")).json()
        response = await client.get(route)
        after = (await client.get("/test/count")).json()
    finally:
        await client.delete(f"/users/{created.json()['id']}")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; nothing was written"}
    assert after == before
    assert f"GET {route} tried to write through its read-only session" in caplog.text
