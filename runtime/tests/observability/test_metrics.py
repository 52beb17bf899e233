"""The metrics: requests by route template, the pools from their events, slow queries."""

import logging

import asyncpg
import pytest
from in_process import app_client, settings_for
from pg_harness.outages import end_session
from pg_harness.urls import asyncpg_connect_args
from pg_runtime.engine import create_app_engine
from pg_runtime.observability.metrics import POOL_CHECKED_OUT, POOL_OVERFLOW
from probe.factory import create_app
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from observability.items import ITEM, app_with_items
from observability.scrape import samples, this_process, value

REQUESTS = "http_request_duration_seconds_count"


async def test_requests_are_counted_by_route_template_method_and_status_class(
    database_url: URL,
) -> None:
    async with app_client(app_with_items(database_url)) as client:
        before = this_process()
        for item_id in (999_999_991, 999_999_992, 999_999_993):
            assert (await client.get(f"/items/{item_id}")).status_code == 404
        await client.get("/no/such/path/123")
        after = this_process()

    route = {"method": "GET", "route": ITEM, "status": "4xx"}
    assert value(after, REQUESTS, **route) - value(before, REQUESTS, **route) == 3
    # Raw paths never become labels: a client could make a new series per request.
    unmatched = {"route": "unmatched", "status": "4xx"}
    assert value(after, REQUESTS, **unmatched) - value(before, REQUESTS, **unmatched) == 1
    assert not any("/no/such" in str(labels) for labels, _ in samples(after, REQUESTS))


async def test_the_apps_port_has_no_metrics(database_url: URL) -> None:
    # They are served on METRICS_PORT by the supervising process (test_served.py).
    app = create_app(settings_for(database_url))
    async with app_client(app) as client:
        response = await client.get("/metrics")

    assert response.status_code == 404
    assert "/metrics" not in app.openapi()["paths"]
    assert "http_request_duration_seconds" not in response.text


async def test_the_pools_figures_come_from_their_events(database_url: URL) -> None:
    async with app_client(
        app_with_items(database_url, db_pool_size=3, db_read_pool_size=2)
    ) as client:
        for _ in range(3):
            assert (await client.get("/items/1259")).status_code == 200  # pg_class itself
        scrape = this_process()

    assert value(scrape, "db_pool_size", pool="write") == 3
    assert value(scrape, "db_pool_size", pool="read") == 2
    # Every connection went back to its pool; none beyond the pool's size was opened.
    assert value(scrape, "db_pool_checked_out", pool="read") == 0
    assert value(scrape, "db_pool_overflow", pool="write") == 0
    assert value(scrape, "db_pool_wait_seconds_count", pool="read") >= 3
    assert value(scrape, "db_query_duration_seconds_count", pool="read") >= 3


async def test_a_slow_query_is_counted_and_logged_with_its_text_not_its_parameters(
    database_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    # Every statement is "slow" at a millionth of a millisecond.
    async with app_client(app_with_items(database_url, db_slow_query_ms=0.000001)) as client:
        before = this_process()
        with caplog.at_level(logging.WARNING, logger="app.queries"):
            assert (await client.get("/items/987654321")).status_code == 404
        after = this_process()

    slow = [record.getMessage() for record in caplog.records if record.name == "app.queries"]
    assert slow, "no slow query logged"
    assert all("FROM pg_class" in line and "987654321" not in line for line in slow), slow
    counted = value(after, "db_slow_queries_total") - value(before, "db_slow_queries_total")
    assert counted >= len(slow) >= 1


async def test_connections_in_use_stay_counted_right_through_a_database_restart(
    fresh_database: URL,
) -> None:
    # The server ends the pool's one connection, then refuses new ones for a while: the
    # failed checkouts must not count as connections given back.
    settings = settings_for(fresh_database, db_pool_size=1, db_max_overflow=0)
    engine = create_app_engine(settings, fresh_database)
    admin = await asyncpg.connect(**asyncpg_connect_args(fresh_database.set(database="postgres")))
    allow = 'ALTER DATABASE "{}" ALLOW_CONNECTIONS {}'.format
    in_use = POOL_CHECKED_OUT.labels("write")
    try:
        before = in_use._value.get()
        async with engine.connect() as connection:
            ended = await connection.scalar(text("SELECT pg_backend_pid()"))
        await end_session(fresh_database, ended)
        await admin.execute(allow(fresh_database.database, "false"))
        for _ in range(3):
            with pytest.raises(DBAPIError):
                async with engine.connect():
                    pass
        assert in_use._value.get() == before
        await admin.execute(allow(fresh_database.database, "true"))
        async with engine.connect():
            assert in_use._value.get() == before + 1
        assert in_use._value.get() == before
    finally:
        await admin.execute(allow(fresh_database.database, "true"))
        await admin.close()
        await engine.dispose()


async def test_overflow_counts_connections_beyond_the_pool_until_they_are_closed(
    database_url: URL,
) -> None:
    settings = settings_for(database_url, db_pool_size=1, db_max_overflow=2)
    engine = create_app_engine(settings, database_url)
    overflow = POOL_OVERFLOW.labels("write")
    try:
        async with engine.connect(), engine.connect(), engine.connect():
            assert overflow._value.get() == 2
        # Given back, the two beyond the pool's size are closed at once.
        assert overflow._value.get() == 0
    finally:
        await engine.dispose()
