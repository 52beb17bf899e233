"""Builds the FastAPI application: lifespan, routers and error handlers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import add_error_handlers
from api.routers import health, notes, users
from app.settings import Settings, load_settings
from orm.session import sessionmanager


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each worker process opens its own pool here; the embedded server, if any, was
        # started once by the parent (main.py or `python -m app.embedded`), never here.
        sessionmanager.init(settings)
        try:
            yield
        finally:
            await sessionmanager.close()

    app = FastAPI(
        title="FastAPI + SQLAlchemy template",
        lifespan=lifespan,
    )
    add_error_handlers(app)
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(notes.router)
    return app
