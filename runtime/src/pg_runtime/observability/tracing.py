"""OpenTelemetry traces: off unless the standard `OTEL_*` variables ask for them.

On: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names a
collector, or `OTEL_TRACES_EXPORTER=otlp`; `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` keeps them off. The exporter (OTLP over HTTP) reads its
endpoint, headers and timeout from the environment; `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` name the service.

FastAPI makes the server span of each request (`FastAPI(telemetry=...)`, api's
create_app), SQLAlchemy's instrumentation the database spans under it. A span never
carries an error's message: a database error's can quote a parameter value.
"""

import os
from collections.abc import Sequence

from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status
from sqlalchemy.ext.asyncio import AsyncEngine


def requested() -> bool:
    """Whether the environment asks for traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return exporter == "otlp" or any(os.environ.get(name) for name in endpoints)


class WithoutMessages(SpanExporter):
    """Passes spans on without error messages: a status keeps its code, not its text."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([_without_messages(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def _without_messages(span: ReadableSpan) -> ReadableSpan:
    events = [event for event in span.events if event.name != "exception"]
    if not span.status.description and len(events) == len(span.events):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def provider_for(exporter: SpanExporter, batch: bool = True) -> TracerProvider:
    """A provider whose spans go to `exporter` (in batches, off the request's path)."""
    provider = TracerProvider()  # its resource comes from OTEL_SERVICE_NAME and the like
    processor: SpanProcessor = (BatchSpanProcessor if batch else SimpleSpanProcessor)(
        WithoutMessages(exporter)
    )
    provider.add_span_processor(processor)
    return provider


def provider_from_environment() -> TracerProvider | None:
    if not requested():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return provider_for(OTLPSpanExporter())


def trace_queries(engines: Sequence[AsyncEngine], provider: TracerProvider) -> None:
    """Database spans for `engines`' statements (text only, never parameters)."""
    SQLAlchemyInstrumentor().instrument(
        engines=[engine.sync_engine for engine in engines],
        tracer_provider=provider,
        # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses are
        # unchanged: runtime/tests/observability/test_tracing.py shows its spans on this version.
        skip_dep_check=True,
    )


def stop_tracing_queries() -> None:
    SQLAlchemyInstrumentor().uninstrument()
