"""Pools survive a database restart: the app, never restarted, answers 503 while its
server is down and serves again soon after it is back; directly and through PgBouncer.

The test starts a PostgreSQL server of its own (the one that goes away), serves the app
from it with `python -m probe`, keeps a steady load of GET /probes/{id} running, restarts
the server, and sorts every request by when it started. `pytest -s` shows a line of
figures per case (on stderr, which pytest-xdist passes on; `-rP` shows it too).
"""

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import anyio
import httpx
import pytest
from in_process import settings_for
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.processes import reachable_dir
from pg_harness.served import Served
from probe.migrations import migrations
from probe.routes import router
from served_probe import served_probe
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow

LOADERS = 4  # concurrent clients, one request at a time each
PAUSE = 0.02  # seconds between a client's requests: a steady load, not a busy loop
CLIENT_TIMEOUT = 5.0
WARM_UP = 1.0
DOWNTIME = 2.0
AFTER = 4.0  # seconds of load once the server is back
# PgBouncer holds a query that finds no server connection for up to 120 s by default,
# longer than any HTTP client waits: a restart would then be seen as hung requests. Set
# below the clients' timeout, as in production, the held request becomes a 503 too.
QUERY_WAIT_TIMEOUT = 1.0
# Requests that start this long after the server accepts connections again must all
# succeed. Direct, the first request after the restart already succeeds: pre-ping drops
# the pool's dead connections and new ones open at once. Through PgBouncer, clients fail
# until its next login attempt, at most server_login_retry (0.1 s, pg_harness.pgbouncer)
# later. Seen on a busy 2-core machine: the last failure at most 0.1 s after, the first
# success at most 0.2 s after; 0.5 s leaves room for a slow scheduler.
RECOVERY_WINDOW = 0.5

# What pg_runtime/errors.py answers when the database is not there, or has no free connection.
CLEAR_FAILURES = (
    {"detail": "database unavailable; try again"},
    {"detail": "database busy; try again"},
)


@dataclass
class Attempt:
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer
    body: str  # the answer, or the transport error

    @property
    def is_clear_failure(self) -> bool:
        if self.status != 503:
            return False
        try:
            return httpx.Response(503, text=self.body).json() in CLEAR_FAILURES
        except ValueError:
            return False


@dataclass
class OwnServer:
    server: EmbeddedPostgres
    url: URL


@pytest.fixture
def own_server() -> Iterator[OwnServer]:
    """A throw-away PostgreSQL of this test's own, free to restart."""
    # Reachable by `nobody` (pytest's tmp_path is 0700 under root), who runs the server.
    with reachable_dir("test-restart-") as parent:
        server = EmbeddedPostgres(parent / "data", throwaway=True, durable=False)
        try:
            yield OwnServer(server, server.start())
        finally:
            server.stop()
        subprocess.run(["rm", "-rf", str(parent)], check=False)


def env_for(url: URL, **settings: str) -> dict[str, str]:
    # A server of the test's own, reached as its superuser: start anyway, warning.
    return {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "DB_ROLE_CHECK": "warn",
        **settings,
    }


async def load(url: str, path: str, attempts: list[Attempt], done: anyio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT) as client:
        while not done.is_set():
            started = time.monotonic()
            try:
                response = await client.get(path)
            except httpx.TransportError as exc:
                attempts.append(Attempt(started, time.monotonic(), None, repr(exc)))
            else:
                attempts.append(
                    Attempt(started, time.monotonic(), response.status_code, response.text)
                )
            await anyio.sleep(PAUSE)


async def restart_under_load(
    served: Served, path: str, server: EmbeddedPostgres
) -> tuple[list[Attempt], float, float]:
    """Every request of the load, when the restart began, and when the server was back."""
    attempts: list[Attempt] = []
    done = anyio.Event()
    async with anyio.create_task_group() as tasks:
        for _ in range(LOADERS):
            tasks.start_soon(load, served.url, path, attempts, done)
        await anyio.sleep(WARM_UP)
        restarting = time.monotonic()
        # Returns once the server accepts connections again (pg_ctl start --wait).
        await anyio.to_thread.run_sync(server.restart, DOWNTIME)
        back = time.monotonic()
        await anyio.sleep(AFTER)
        done.set()
    return attempts, restarting, back


@pytest.mark.parametrize("through_pgbouncer", [False, True], ids=["direct", "pgbouncer"])
async def test_requests_fail_with_503_while_the_server_is_down_and_succeed_once_it_is_back(
    own_server: OwnServer, through_pgbouncer: bool
) -> None:
    await migrations.upgrade_database(settings_for(own_server.url))
    env = env_for(own_server.url)
    with ExitStack() as stack:
        if through_pgbouncer:  # as docs/production.md sets it up
            require_pgbouncer()  # skips, or fails in CI where it must be installed
            bouncer = PgBouncer(own_server.url, query_wait_timeout=QUERY_WAIT_TIMEOUT)
            stack.callback(bouncer.stop)
            bouncer.start()
            env = env_for(
                bouncer.url_for(own_server.url),
                DB_BEHIND_PGBOUNCER="true",
                DIRECT_URL=own_server.url.render_as_string(hide_password=False),
            )
        served = stack.enter_context(served_probe(env))
        assert served.process is not None
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            created = await client.post(router.url_path_for("create_probe"), json={"name": "A"})
        assert created.status_code == 201, created.text
        path = router.url_path_for("read_probe", probe_id=created.json()["id"])

        attempts, restarting, back = await restart_under_load(served, path, own_server.server)

        still_serving = served.process.poll() is None
        # Less the access lines of successful requests: what is left says what broke.
        log = "\n".join(line for line in served.log().splitlines() if '" 200 OK' not in line)

    failed = [attempt for attempt in attempts if attempt.status != 200]
    while_down = [attempt for attempt in failed if attempt.started < back]
    late = [attempt for attempt in failed if attempt.started >= back + RECOVERY_WINDOW]
    unclear = [attempt for attempt in failed if not attempt.is_clear_failure]
    # Requests that started before the first failure may have been answered before the
    # server went away.
    first_failure = min((attempt.started for attempt in failed), default=restarting)
    first_success = min(
        (
            attempt.ended
            for attempt in attempts
            if attempt.status == 200 and attempt.started > first_failure
        ),
        default=float("inf"),
    )
    last_failure = max((attempt.started for attempt in failed), default=restarting)
    slowest = max(attempt.ended - attempt.started for attempt in attempts)
    summary = (
        f"{'pgbouncer' if through_pgbouncer else 'direct'}: {len(attempts)} requests, "
        f"{len(while_down)} failed while down "
        f"({f'{len(unclear)} not a clear 503' if unclear else 'all 503'}), "
        f"{len(failed) - len(while_down) - len(late)} in the {RECOVERY_WINDOW} s after, "
        f"{len(late)} later; after the restart: first success {first_success - back:.2f} s, "
        f"last failure started {last_failure - back:.2f} s; down {back - restarting:.2f} s, "
        f"slowest request {slowest:.2f} s"
    )
    print(summary, file=sys.stderr)

    assert while_down, f"no request failed: the restart went unseen; {summary}"
    assert not unclear, f"{summary}; for instance {unclear[:3]}\n{log}"
    assert not late, f"{summary}; failures after the recovery window: {late[:3]}\n{log}"
    assert first_success < back + RECOVERY_WINDOW, summary
    assert "Traceback" not in log, f"{summary}\n{log}"
    # The app was not restarted: the one process it started with is still serving.
    assert still_serving, f"{summary}; the app stopped:\n{log}"
    started = re.findall(r"Started server process \[(\d+)\]", log)
    assert started == [str(served.process.pid)], f"{summary}\n{log}"
