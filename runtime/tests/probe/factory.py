"""Builds the probe app: its router inside the runtime's machinery."""

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pg_runtime.service import create_service_app

from probe.migrations import migrations
from probe.routes import router
from probe.session import sessionmanager
from probe.settings import ProbeSettings, load_settings

NAME = "pg-runtime probe"


def create_app(
    settings: ProbeSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    return create_service_app(
        NAME,
        settings or load_settings(),
        sessionmanager,
        migrations,
        [router],
        tracer_provider=tracer_provider,
    )
