"""Builds the FastAPI application: the service's routers inside the runtime's machinery.

Add middleware, exception handlers or routers of your own here, after the runtime's.
"""

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pg_runtime.service import create_service_app

from api.routers import ROUTERS
from app import NAME
from app.settings import Settings, load_settings
from orm.migrations import migrations
from orm.session import sessionmanager


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app; `tracer_provider`: where its traces go (default: as `OTEL_*` say, if at all)."""
    return create_service_app(
        NAME,
        settings or load_settings(),
        sessionmanager,
        migrations,
        ROUTERS,
        tracer_provider=tracer_provider,
    )
