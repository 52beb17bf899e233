"""Traces: a server span per request, with the request id, and the database spans under it."""

import logging
from collections.abc import AsyncIterator

import pytest
from in_process import app_client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pg_runtime.observability import tracing
from pg_runtime.observability.logs import RequestIdFilter
from pg_runtime.observability.request_id import HEADER
from probe.dependencies import ReadSession
from sqlalchemy import text
from sqlalchemy.engine import URL

from observability.items import ITEM, app_with_items

SECRET = "hunter2-parameter-value"


@pytest.fixture
async def traced(database_url: URL) -> AsyncIterator[tuple[object, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = tracing.provider_for(exporter, batch=False)
    app = app_with_items(database_url, tracer_provider=provider)

    @app.get("/refused")
    async def refused(session: ReadSession) -> None:
        # What validation missed, refused by the server, whose message quotes the value.
        await session.execute(text("SELECT CAST(:v AS integer)"), {"v": SECRET})

    async with app_client(app) as client:
        yield client, exporter
    provider.shutdown()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def trace_of(spans: tuple[ReadableSpan, ...], root: ReadableSpan) -> list[ReadableSpan]:
    """The spans under `root`, however deep."""
    assert root.context is not None
    return [
        span for span in spans if span.context and span.context.trace_id == root.context.trace_id
    ]


def statement_of(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def test_one_request_is_one_tree_with_its_id_and_its_queries(
    traced: tuple[object, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    access_lines = Captured()
    access_lines.addFilter(RequestIdFilter())  # as the app's own handler has it
    access_log = logging.getLogger("app.requests")
    access_log.addHandler(access_lines)
    access_log.setLevel(logging.INFO)
    try:
        response = await client.get("/items/999999999", headers={HEADER: "trace-me-1"})  # type: ignore[attr-defined]
    finally:
        access_log.removeHandler(access_lines)
        access_log.setLevel(logging.NOTSET)
    assert response.status_code == 404
    # One id, from the header to the log line to the span.
    assert response.headers[HEADER] == "trace-me-1"
    [line] = access_lines.records
    assert line.request_id == "trace-me-1"  # type: ignore[attr-defined]
    spans = exporter.get_finished_spans()

    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(servers) == 1, [span.name for span in spans]
    server = servers[0]
    assert server.attributes is not None
    assert server.attributes["request.id"] == "trace-me-1"
    assert server.attributes.get("http.route") == ITEM

    tree = trace_of(spans, server)
    by_id = {span.context.span_id: span for span in tree if span.context}
    queries = {span.name: statement_of(span) for span in tree if statement_of(span)}
    assert "SELECT" in queries, [span.name for span in tree]
    for query in (span for span in tree if span.kind is SpanKind.CLIENT):
        assert server in ancestors(query, by_id)
    # The statement's text, with placeholders: never a parameter's value.
    assert "pg_class" in queries["SELECT"]
    assert "999999999" not in queries["SELECT"]


async def test_a_span_never_carries_an_errors_message(
    traced: tuple[object, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    response = await client.get("/refused")  # type: ignore[attr-defined]
    assert response.status_code == 422
    spans = exporter.get_finished_spans()
    failed = [span for span in spans if span.status.status_code is StatusCode.ERROR]
    assert failed, [span.name for span in spans]  # the error is there, its message is not
    for span in spans:
        assert SECRET not in (span.status.description or "")
        assert all(event.name != "exception" for event in span.events)
