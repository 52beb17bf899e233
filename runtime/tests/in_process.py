"""The probe app in this process: its settings for a test database, and a client with its
lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pg_runtime import testing
from probe.factory import create_app
from probe.settings import ProbeSettings
from sqlalchemy.engine import URL


def settings_for(database_url: URL, **settings: object) -> ProbeSettings:
    return testing.settings_for(ProbeSettings, database_url, **settings)


@asynccontextmanager
async def app_client(app: FastAPI | ProbeSettings) -> AsyncIterator[AsyncClient]:
    """A client of an app of its own, with its lifespan: its own pools, real commits."""
    app = app if isinstance(app, FastAPI) else create_app(app)
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://test") as client,
    ):
        yield client
