"""`python -m probe` as production runs a service: JSON lines, ids, and metrics that cover
every worker, on a port of their own."""

import json
import os
import signal
import socket
import subprocess
from typing import Any

import anyio
import httpx
import pytest
from pg_harness.prometheus import Prometheus, require_prometheus
from pg_harness.served import Served
from pg_runtime.observability.request_id import HEADER
from pg_runtime.testing import role_env
from served_probe import PROBE_COMMAND, probe_env, served_probe
from sqlalchemy.engine import URL

from observability.scrape import samples, value

pytestmark = pytest.mark.slow

REQUESTS = 40


def served_env(url: URL, **settings: str) -> dict[str, str]:
    return {**role_env(url), **settings}


def json_lines(log: str) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be one JSON object."""
    lines = [line for line in log.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


async def scrape_of(served: Served) -> str:
    """A scrape of the metrics' own port (METRICS_PORT), served by the supervising process."""
    async with httpx.AsyncClient(base_url=served.metrics_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


async def spread(url: str, route: str, count: int, prefix: str) -> None:
    """`count` GETs of `route`, each on a new connection, so the workers share them."""
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=no_keepalive, timeout=30) as client:

        async def one(number: int) -> None:
            response = await client.get(route, headers={HEADER: f"{prefix}-{number}"})
            assert response.status_code == 200, response.text
            assert response.headers[HEADER] == f"{prefix}-{number}"

        async with anyio.create_task_group() as tasks:
            for number in range(count):
                tasks.start_soon(one, number)


async def test_two_workers_log_json_lines_and_a_scrape_counts_both(fresh_database: URL) -> None:
    env = served_env(fresh_database, WORKERS="2", LOG_FORMAT="json")
    with served_probe(env) as served:
        await anyio.to_thread.run_sync(served.wait_for_log, "database pools: up to", 2)
        await spread(served.url, "/probes", REQUESTS, "load")
        async with httpx.AsyncClient(base_url=served.url) as client:
            taken = await client.post("/probes", json={"name": "dup@example.org"})
            assert taken.status_code == 201
            again = await client.post(
                "/probes", json={"name": "dup@example.org"}, headers={HEADER: "dup"}
            )
            assert again.status_code == 409
            on_the_apps_port = await client.get("/metrics")
        scrape = await scrape_of(served)
        lines = json_lines(served.log())

    # Every line is JSON, uvicorn's own included.
    assert any(line["message"].startswith("Started server process") for line in lines)
    # One line per request, the app's: uvicorn's own access line (raw path) is off.
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    access = [line for line in lines if line["logger"] == "app.requests"]
    load = [line for line in access if line.get("request_id", "").startswith("load-")]
    assert {line["request_id"] for line in load} == {f"load-{n}" for n in range(REQUESTS)}
    assert {(line["method"], line["route"], line["status"]) for line in load} == {
        ("GET", "/probes", 200)
    }
    assert all(line["duration_ms"] > 0 for line in load)
    answered_by = {line["pid"] for line in load}
    assert len(answered_by) == 2, "one worker took every request: nothing to add up"
    # The database error's line names the request, the SQLSTATE and the constraint only.
    [conflict] = [line for line in lines if line["logger"] == "pg_runtime.errors"]
    assert conflict["request_id"] == "dup"
    assert "23505" in conflict["message"]
    assert "dup@example.org" not in json.dumps(lines)
    # The API's port serves the API only; the metrics' own port adds up both workers.
    assert on_the_apps_port.status_code == 404
    assert "http_request_duration_seconds" not in on_the_apps_port.text
    assert value(scrape, "http_request_duration_seconds_count", route="/probes", method="GET") == (
        REQUESTS
    )
    workers_pools = {labels["pid"] for labels, _ in samples(scrape, "db_pool_size")}
    assert {str(pid) for pid in answered_by} <= workers_pools


async def test_a_dead_workers_pool_leaves_the_scrape_and_its_requests_stay(
    fresh_database: URL,
) -> None:
    with served_probe(served_env(fresh_database, WORKERS="2", LOG_FORMAT="json")) as served:
        await anyio.to_thread.run_sync(served.wait_for_log, "database pools: up to", 2)
        await spread(served.url, "/probes", REQUESTS, "before")
        workers = {
            line["pid"] for line in json_lines(served.log()) if line["logger"] == "app.requests"
        }
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        # uvicorn starts a worker in its place.
        await anyio.to_thread.run_sync(served.wait_for_log, "database pools: up to", 3)
        scrape = await scrape_of(served)

    pools_of = {labels["pid"] for labels, _ in samples(scrape, "db_pool_size")}
    assert str(killed) not in pools_of
    assert len(pools_of) == 2
    assert value(scrape, "http_request_duration_seconds_count", route="/probes") == REQUESTS


async def test_prometheus_scrapes_the_served_app(fresh_database: URL) -> None:
    require_prometheus()
    with served_probe(served_env(fresh_database, WORKERS="2")) as served:
        await anyio.to_thread.run_sync(served.wait_for_log, "database pools: up to", 2)
        prometheus = Prometheus([served.metrics_url.removeprefix("http://")])
        await anyio.to_thread.run_sync(prometheus.start)
        try:
            await spread(served.url, "/probes", REQUESTS, "scraped")
            query = 'sum(http_request_duration_seconds_count{job="app", route="/probes"})'
            with anyio.fail_after(60):
                while True:
                    result = await anyio.to_thread.run_sync(prometheus.query, query)
                    if result and float(result[0]["value"][1]) == REQUESTS:
                        break
                    await anyio.sleep(0.5)
            up = await anyio.to_thread.run_sync(prometheus.query, 'up{job="app"}')
            pools = await anyio.to_thread.run_sync(prometheus.query, "db_pool_size")
        finally:
            prometheus.stop()

    assert [float(series["value"][1]) for series in up] == [1.0]
    assert {series["metric"]["pool"] for series in pools} == {"read", "write"}


async def test_a_metrics_port_in_use_stops_start_up_naming_the_setting(database_url: URL) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = os.environ | probe_env(served_env(database_url, METRICS_PORT=str(port)))
        with anyio.fail_after(60):
            done = await anyio.run_process(
                PROBE_COMMAND, env=env, check=False, stderr=subprocess.STDOUT
            )

    output = done.stdout.decode()
    assert done.returncode != 0, output
    assert f"METRICS_HOST:METRICS_PORT (127.0.0.1:{port}) cannot be listened on: in use" in output
    assert "Traceback" not in output
