"""GET /health."""

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL

from app.factory import create_app
from app.settings import Settings


async def test_health_with_reachable_database_returns_200(client: AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "reachable"}


async def test_health_with_unreachable_database_returns_503(database_url: URL) -> None:
    # Port 1 on loopback refuses connections at once.
    settings = Settings(database_url=database_url.set(port=1), _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings)
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://test") as client,
    ):
        response = await client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}
