"""What resetting each connection's session state costs a request (pg_runtime/session_reset.py).

    python -m bench.session_reset [--requests 2000] [--rounds 7]

The app in this process (ASGI, no socket, no wrk), one worker's pools, on TEST_DATABASE_URL's
server or an embedded one: GET /users/{id} and POST /users, with the reset as shipped
(only after a statement that may have changed the session: none of these ORM requests'),
with it after every request, and with the pool's plain rollback on return instead (what
came before), alternated round by round. Reported per request: the CPU µs of the thread
that serves (the event loop's, not a metrics or tracing thread's) and the wall µs, median
[lowest-highest] over rounds, and each variant's share of the plain one's. On a busy
machine their spread hides a few %: so the CPU spent in the reset's own round trip is
timed too (the requests run one at a time, so nothing else runs meanwhile), and reported
as a share of the same requests' CPU.
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pg_runtime.engine
import pg_runtime.session_reset
from asgi_lifespan import LifespanManager
from pg_harness.databases import drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_runtime.database_url import to_asyncpg_url
from pg_runtime.session_reset import reset_sessions as shipped
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from app.factory import create_app
from app.settings import Settings
from bench.throughput import USERS, describe, rotated, with_database


def rollback_only(engine: AsyncEngine, behind_pgbouncer: bool) -> None:
    """The pool's own reset_on_return="rollback", which create_app_engine turned off."""

    @event.listens_for(engine.sync_engine.pool, "reset")
    def rollback(dbapi_connection: Any, record: object, state: Any) -> None:
        if state.asyncio_safe and not state.terminate_only:
            dbapi_connection.rollback()


def reset_always(engine: AsyncEngine, behind_pgbouncer: bool) -> None:
    """The reset after every request, as if every statement could have changed the session."""
    shipped(engine, behind_pgbouncer)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def may_have_changed(connection: Any, *_: object) -> None:
        connection.info[pg_runtime.session_reset._MAY_HAVE_CHANGED] = True


class TimedAwait:
    """pg_runtime.session_reset's await_, counting the CPU seconds spent in it."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.original = await_

    def __call__(self, awaitable: Any) -> Any:
        started = time.thread_time()
        try:
            return self.original(awaitable)
        finally:
            self.spent += time.thread_time() - started


VARIANTS: dict[str, Callable[[AsyncEngine, bool], None]] = {
    "reset": shipped,
    "reset always": reset_always,
    "rollback only": rollback_only,
}


async def per_request(
    database: URL, method: str, requests: int, timed: TimedAwait
) -> tuple[float, float, float]:
    """CPU µs, wall µs and CPU µs in the reset per request of `method`, after a warm-up."""
    settings = Settings(
        database_url=database, access_log=False, log_level="warning", _env_file=None
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app)

    async def one(number: int) -> None:
        if method == "GET":
            response = await client.get(f"http://bench/users/{1 + number % USERS}")
            assert response.status_code == 200, response.text
        else:
            email = f"r{os.getpid()}-{time.monotonic_ns()}-{number}@bench.example.org"
            response = await client.post("http://bench/users", json={"email": email, "name": "b"})
            assert response.status_code == 201, response.text

    async with LifespanManager(app), httpx.AsyncClient(transport=transport) as client:
        for number in range(requests // 5):
            await one(number)
        timed.spent = 0.0
        cpu, wall = time.thread_time(), time.perf_counter()
        for number in range(requests):
            await one(number)
        return (
            (time.thread_time() - cpu) / requests * 1e6,
            (time.perf_counter() - wall) / requests * 1e6,
            timed.spent / requests * 1e6,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per run (2000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternated rounds (7)")
    args = parser.parse_args()
    with ExitStack() as stack:
        given = os.environ.get("TEST_DATABASE_URL")
        if given:
            admin_url: URL = to_asyncpg_url(given)
        else:
            embedded = EmbeddedPostgres(
                Path(tempfile.mkdtemp(prefix="bench-postgres-")), throwaway=True
            )
            stack.callback(embedded.stop)
            admin_url = embedded.start()
        database = asyncio.run(with_database(admin_url))
        stack.callback(lambda: asyncio.run(drop_database(admin_url, database.database or "")))
        print(f"server {admin_url.host}:{admin_url.port}; {args.requests} x {args.rounds} rounds")
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        timed = TimedAwait()
        setattr(pg_runtime.session_reset, "await_", timed)  # noqa: B010
        for number in range(args.rounds):
            for method in ("GET", "POST"):
                for name in rotated(list(VARIANTS), number):
                    # create_app_engine calls it by this name
                    setattr(pg_runtime.engine, "reset_sessions", VARIANTS[name])  # noqa: B010
                    measured = asyncio.run(per_request(database, method, args.requests, timed))
                    results.setdefault((method, name), []).append(measured)
        setattr(pg_runtime.engine, "reset_sessions", shipped)  # noqa: B010
    for method in ("GET", "POST"):
        plain = statistics.median(cpu for cpu, _, _ in results[(method, "rollback only")])
        for name in VARIANTS:
            got = results[(method, name)]
            cpu = [c for c, _, _ in got]
            share = (statistics.median(cpu) / plain - 1) * 100
            print(
                f"{method:4} {name:14} CPU µs {describe(cpu)}  wall µs "
                f"{describe([w for _, w, _ in got])}  CPU vs rollback only {share:+.1f} %"
            )
        for name in ("reset", "reset always"):
            own = [in_reset / c * 100 for c, _, in_reset in results[(method, name)]]
            spent = [in_reset for _, _, in_reset in results[(method, name)]]
            print(f"{method:4} {name}: its round trip CPU µs {describe(spent)}, % {describe(own)}")


if __name__ == "__main__":
    main()
