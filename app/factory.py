"""Builds the FastAPI application: lifespan, routers, error handlers and what it reports."""

import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from api.consistency import ConsistencyHeaders
from api.errors import add_error_handlers
from api.routers import ROUTERS
from app import NAME
from app.observability import metrics, tracing
from app.observability.requests import ObservedRequests
from app.settings import Settings, load_settings
from orm.migrations import upgrade_database
from orm.session import sessionmanager

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


def _not_traced(scope: MutableMapping[str, Any]) -> bool:
    return bool(scope.get("path") == METRICS_PATH)


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app; `tracer_provider`: where its traces go (default: as `OTEL_*` say, if at all)."""
    settings = settings or load_settings()
    tracer_provider = tracer_provider or tracing.provider_from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each worker process opens its own pool here; the embedded server, if any, was
        # started once by the parent (main.py or `python -m pg_harness.embedded`), never here.
        # `python main.py` migrated once before starting its workers and turned this off;
        # under a bare `uvicorn --workers N` each worker migrates, taking turns.
        if settings.migrate_on_start:
            await upgrade_database(settings)
        sessionmanager.init(settings)
        if tracer_provider is not None:
            tracing.trace_queries(sessionmanager.engines, tracer_provider)
        logger.info(
            "database pools: up to %d connections in this process "
            "(DB_POOL_SIZE + DB_MAX_OVERFLOW + DB_READ_POOL_SIZE)",
            settings.max_connections_per_worker,
        )
        if settings.database_read_url:
            logger.info(
                "reads from %d standbys: up to %d connections to each in this process "
                "(DB_STANDBY_POOL_SIZE + 1 for polls), and %d more to the primary for polls",
                len(settings.database_read_url),
                settings.db_standby_pool_size + 1,
                len(settings.database_read_url),
            )
        try:
            yield
        finally:
            if tracer_provider is not None:
                tracing.stop_tracing_queries()
                tracer_provider.force_flush()
            await sessionmanager.close()
            metrics.forget_this_worker()
            logger.info("database pool closed")

    app = FastAPI(
        title=NAME,
        lifespan=lifespan,
        max_body_size=settings.max_body_size,
        telemetry={
            "tracer_provider": tracer_provider,
            "tracing": tracer_provider is not None,
            # Prometheus counts (app/observability/metrics.py); FastAPI's log export would
            # carry exception messages, which can quote a parameter value.
            "metrics": False,
            "logs": False,
            "auto_configure": False,
            "exclude": _not_traced,
        },
    )
    add_error_handlers(app)
    if settings.database_read_url:
        app.add_middleware(ConsistencyHeaders)
    # Added last, so outermost: the error answers fall inside each request's id and time.
    app.add_middleware(
        ObservedRequests, access_log=settings.access_log, count=settings.metrics_enabled
    )
    for router in ROUTERS:
        app.include_router(router)
    if settings.metrics_enabled:
        app.add_api_route(METRICS_PATH, metrics.metrics, include_in_schema=False)
    return app
