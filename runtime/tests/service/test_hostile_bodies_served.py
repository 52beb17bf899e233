"""Hostile JSON bodies on a real uvicorn worker: refused small, with no traceback logged, and
without stalling the worker (pg_runtime/json_bodies.py, pg_runtime/validation_answers.py).

Before, 100,000 unknown keys (0.93 MB) took seconds of the worker's CPU to answer 11.7 MB,
and /health/live on that worker waited as long; NaN or a lone surrogate answered 500.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from pg_harness.served import Served
from pg_harness.server import RunDatabases
from pg_runtime.testing import role_env
from served_probe import served_probe
from sqlalchemy.engine import URL

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile_bodies")]

JSON = {"content-type": "application/json"}
# Hexadecimal keys: 100,000 of them fit in 0.93 MB, under the default MAX_BODY_SIZE (1 MiB).
MANY_UNKNOWN_KEYS = b"{" + b",".join(b'"%x":0' % i for i in range(100_000)) + b"}"
NOT_JSON = [
    b'{"name": NaN}',
    b'{"name": "Ann", "x": [Infinity]}',
    b'{"name": -1e400}',
    rb'{"name": "\ud800"}',
    rb'{"name": "Ann", "\udc00": 1}',
    b"[" * 100_000 + b"]" * 100_000,
]
# Generous: what is proven is that the worker is not held for the body's seconds of work.
LIVENESS_BOUND = 1.0


@pytest.fixture(scope="module")
async def database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_hostile_bodies") as url:
        yield url


@pytest.fixture(scope="module")
def served(database: URL) -> Iterator[Served]:
    """`python -m probe`, one worker, the default limits."""
    env = {**role_env(database), "WORKERS": "1"}
    with served_probe(env) as served:
        yield served


async def test_liveness_answers_while_100_000_unknown_keys_are_refused(
    served: Served, url_for: Callable[..., str]
) -> None:
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=30) as poster,
        httpx.AsyncClient(base_url=served.url, timeout=30) as prober,
    ):
        refused = asyncio.create_task(
            poster.post(url_for("create_probe"), content=MANY_UNKNOWN_KEYS, headers=JSON)
        )
        waits = []
        while not refused.done():
            started = time.monotonic()
            live = await prober.get(url_for("read_liveness"))
            waits.append(time.monotonic() - started)
            assert live.status_code == 200
        response = await refused

    assert waits, "the refusal ended before liveness was asked"
    assert max(waits) < LIVENESS_BOUND, f"/health/live took {max(waits):.2f} s"
    assert response.status_code == 422, response.text[:200]
    assert len(response.content) < 2048
    assert response.json()["detail"][0]["type"] == "too_many_values"


async def test_bodies_that_are_not_json_are_refused_without_an_error_logged(
    served: Served, url_for: Callable[..., str]
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        answers = [
            await client.post(url_for("create_probe"), content=body, headers=JSON)
            for body in NOT_JSON
        ]
        # Logged after every line the refusals could have logged.
        await client.get(url_for("read_liveness"), headers={"X-Request-ID": "after-not-json"})

    assert [answer.status_code for answer in answers] == [422] * len(NOT_JSON)
    assert all(len(answer.content) < 512 for answer in answers)
    log = served.wait_for_log("[request after-not-json]", seconds=10)
    assert "ERROR" not in log, log
    assert "Traceback" not in log, log
