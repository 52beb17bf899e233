"""A FastAPI app with the runtime around its routers: pools opened and closed in its
lifespan, the error answers, request ids, logs, metrics, traces and the health probes."""

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import TracerProvider

from pg_runtime.api_docs import fastapi_app
from pg_runtime.consistency import ConsistencyHeaders
from pg_runtime.errors import add_error_handlers
from pg_runtime.health import health_router
from pg_runtime.json_bodies import StrictJsonBodies
from pg_runtime.migrations import Migrations
from pg_runtime.observability import metrics, tracing
from pg_runtime.observability.requests import ObservedRequests
from pg_runtime.privileges import check_roles
from pg_runtime.sessions import DatabaseSessionManager
from pg_runtime.settings import RuntimeSettings

logger = logging.getLogger(__name__)


def create_service_app(
    title: str,
    settings: RuntimeSettings,
    sessionmanager: DatabaseSessionManager,
    migrations: Migrations,
    routers: Sequence[APIRouter],
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The app serving `routers` with `sessionmanager`'s sessions; `tracer_provider`: where
    its traces go (default: as `OTEL_*` say, if at all)."""
    tracer_provider = tracer_provider or tracing.provider_from_environment()
    app = fastapi_app(
        settings,
        title=title,
        lifespan=_lifespan(settings, sessionmanager, migrations, tracer_provider),
        max_body_size=settings.max_body_size,
        telemetry={
            "tracer_provider": tracer_provider,
            "tracing": tracer_provider is not None,
            # Prometheus counts (pg_runtime.observability.metrics); FastAPI's log export
            # would carry exception messages, which can quote a parameter value.
            "metrics": False,
            "logs": False,
            "auto_configure": False,
        },
    )
    # Added first, so innermost: a bug in it is answered as any other (ErrorAnswerMiddleware).
    app.add_middleware(StrictJsonBodies, max_values=settings.max_body_values)
    add_error_handlers(app)
    if settings.database_read_url:
        app.add_middleware(ConsistencyHeaders)
    # Added last, so outermost: the error answers fall inside each request's id and time.
    app.add_middleware(
        ObservedRequests, access_log=settings.access_log, count=settings.metrics_enabled
    )
    app.include_router(health_router(sessionmanager, migrations))
    for router in routers:
        app.include_router(router)
    return app


def _lifespan(
    settings: RuntimeSettings,
    sessionmanager: DatabaseSessionManager,
    migrations: Migrations,
    tracer_provider: TracerProvider | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each worker process opens its own pool here; the embedded server, if any, was
        # started once by the parent, never here. `python main.py` migrated once before
        # starting its workers and turned this off; under a bare `uvicorn --workers N`
        # each worker migrates, taking turns.
        if settings.migrate_on_start:
            await migrations.upgrade_database(settings)
        await check_roles(settings)
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

    return lifespan
