"""Builds the FastAPI application: lifespan, routers and error handlers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import add_error_handlers
from api.routers import ROUTERS
from app import NAME
from app.settings import Settings, load_settings
from orm.migrations import upgrade_database
from orm.session import sessionmanager

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each worker process opens its own pool here; the embedded server, if any, was
        # started once by the parent (main.py or `python -m pg_harness.embedded`), never here.
        # `python main.py` migrated once before starting its workers and turned this off;
        # under a bare `uvicorn --workers N` each worker migrates, taking turns.
        if settings.migrate_on_start:
            await upgrade_database(settings)
        sessionmanager.init(settings)
        logger.info(
            "database pools: up to %d connections in this process "
            "(DB_POOL_SIZE + DB_MAX_OVERFLOW + DB_READ_POOL_SIZE)",
            settings.max_connections_per_worker,
        )
        try:
            yield
        finally:
            await sessionmanager.close()
            logger.info("database pool closed")

    app = FastAPI(
        title=NAME,
        lifespan=lifespan,
        max_body_size=settings.max_body_size,
    )
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
