"""What reading from a standby costs the app: GETs on a streaming standby against on the
primary, a GET carrying a consistency token, and a POST that hands one out.

    python -m bench.replicas [--duration 5] [--rounds 5]

An embedded primary (the project's migrations, bench/throughput.py's seed) and a
standby of it (`pg_basebackup -R`, pg_harness.embedded.standby), and two apps of one
worker each, served side by side:
- primary: DATABASE_URL only (every read on the primary, no token handed out);
- standby: DATABASE_READ_URL too (GETs on the standby; a write that carries
  X-Consistency-Token gets its commit's position back, at one query more).
wrk saturates each endpoint on each app in turn, in a rotating order per round. Reported:
req/s and the app's CPU ms per request, median [lowest-highest] over rounds, and which
server answered the GETs (the app's db_reads_total). On 2 cores, the primary, the standby,
the app and wrk share the machine: a standby cannot make reads faster here; the point is
what routing and tokens cost the app, and that the reads land where they should. Then,
in this process with no HTTP server and no wrk, the app's own CPU per GET with reads on
the standby against on the primary: the routing's cost alone.
Any failed request fails the run.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from pg_harness.databases import drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.embedded.standby import Standby
from pg_harness.processes import reachable_dir
from pg_harness.served import Served
from pg_harness.urls import connected
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from app.factory import create_app
from app.settings import Settings
from bench.throughput import (
    POOLS,
    Run,
    alternated_runs_arguments,
    describe,
    rotated,
    with_database,
    wrk,
)

# Name: (wrk script, whether requests carry a consistency token, the apps it runs on).
ENDPOINTS = {
    "GET /users/{id}": ("read_user.lua", False, ("primary", "standby")),
    "GET with a token": ("read_user.lua", True, ("standby",)),
    "POST /users": ("create_user.lua", False, ("primary", "standby")),
    "POST with a token": ("create_user.lua", True, ("standby",)),
}


async def replayed(standby: URL) -> str:
    async with connected(standby) as connection:
        return str(await connection.fetchval("SELECT pg_last_wal_replay_lsn()::text"))


def reads_by_server(served: Served) -> dict[str, float]:
    scrape = httpx.get(f"{served.metrics_url}/metrics", timeout=10).text
    return {
        sample.labels["server"]: sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "db_reads_total"
    }


async def in_process_cpu_us(settings: Settings, requests: int) -> float:
    """The app's CPU µs per GET /users/{id}, served in this process (ASGI, no socket)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport) as client:
        await asyncio.sleep(0.5)  # the first poll of the standby
        for number in range(requests // 5):  # warm
            await client.get(f"http://bench/users/{1 + number % 100}")
        started = time.process_time()
        for number in range(requests):
            response = await client.get(f"http://bench/users/{1 + number % 100}")
            assert response.status_code == 200, response.text
        spent = time.process_time() - started
        if settings.database_read_url:
            assert response.headers["X-Read-Server"] == "standby-0"
    return spent / requests * 1e6


def main() -> None:
    args = alternated_runs_arguments(__doc__.splitlines()[0])
    runs: dict[tuple[str, str], list[Run]] = {}
    with ExitStack() as stack:
        # Always embedded: a standby needs a primary of the wheel's own version.
        primary = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="bench-postgres-")), throwaway=True)
        stack.callback(primary.stop)
        admin_url = primary.start()
        database = asyncio.run(with_database(admin_url))
        stack.callback(lambda: asyncio.run(drop_database(admin_url, database.database or "")))
        standby = Standby(admin_url, stack.enter_context(reachable_dir("bench-standby-")) / "data")
        stack.callback(standby.stop)
        standby.start()
        asyncio.run(standby.wait_caught_up())
        standby_url = standby.url(database.database or "")
        # A position the standby has replayed: a token read it may serve.
        token = asyncio.run(replayed(standby_url))

        def carried(carries_token: bool) -> str | None:
            return token if carries_token else None

        common = POOLS | {
            "DATABASE_URL": database.render_as_string(hide_password=False),
            "WORKERS": "1",
            "ACCESS_LOG": "false",
            "DB_ROLE_CHECK": "warn",  # the bench's admin: start anyway (docs/roles.md)
        }
        servers = {
            "primary": stack.enter_context(Served(common)),
            "standby": stack.enter_context(
                Served(
                    common
                    | {
                        "DATABASE_READ_URL": standby_url.render_as_string(hide_password=False),
                        "DB_STANDBY_POOL_SIZE": POOLS["DB_READ_POOL_SIZE"],
                    }
                )
            ),
        }
        warm_up = argparse.Namespace(**{**vars(args), "duration": 2})
        for name, served in servers.items():
            for script, carries_token, on in ENDPOINTS.values():
                if name in on:
                    wrk(
                        served,
                        script,
                        warm_up,
                        f"warm{name}{carries_token:d}",
                        token=carried(carries_token),
                    )
        for number in range(args.rounds):
            for endpoint, (script, carries_token, on) in ENDPOINTS.items():
                for name in rotated(list(on), number):
                    run = wrk(
                        servers[name],
                        script,
                        args,
                        f"r{number}{name}{carries_token:d}",
                        token=carried(carries_token),
                    )
                    runs.setdefault((endpoint, name), []).append(run)
                    print(
                        f"round {number + 1} {endpoint:17} {name:8}"
                        f"{run.per_second:8.0f} req/s {run.cpu_ms_per_request:6.2f} CPU ms/req"
                        f"  errors {run.errors}",
                        flush=True,
                    )
        answered = {name: reads_by_server(served) for name, served in servers.items()}
        for served in servers.values():
            served.stop()
        direct = Settings(
            database_url=database, access_log=False, db_role_check="warn", _env_file=None
        )
        routed = direct.model_copy(update={"database_read_url": [standby_url]})
        in_process: dict[str, list[float]] = {"primary": [], "standby": []}
        for number in range(args.rounds):
            for name in rotated(list(in_process), number):
                settings = routed if name == "standby" else direct
                in_process[name].append(asyncio.run(in_process_cpu_us(settings, 1000)))
    print(f"\nmedian [lowest-highest] over {args.rounds} rounds of {args.duration} s, 1 worker")
    for endpoint, (_, _, on) in ENDPOINTS.items():
        for name in on:
            got = runs[endpoint, name]
            print(
                f"{endpoint:17} {name:8} req/s {describe([r.per_second for r in got])}"
                f"   CPU ms/req {describe([r.cpu_ms_per_request for r in got])}"
            )

    def median(endpoint: str, name: str) -> float:
        return statistics.median(r.per_second for r in runs[endpoint, name])

    comparisons = [
        ("GET /users/{id}", "standby", "GET /users/{id}", "primary", "standby against primary"),
        ("POST /users", "standby", "POST /users", "primary", "standbys set, no token asked"),
        ("GET with a token", "standby", "GET /users/{id}", "standby", "against no token"),
        ("POST with a token", "standby", "POST /users", "standby", "against no token"),
    ]
    for endpoint, name, base_endpoint, base_name, what in comparisons:
        change = 100 * (median(endpoint, name) / median(base_endpoint, base_name) - 1)
        print(f"{endpoint:17} {name} {what}: {change:+.1f} % req/s")
    for name, cpu in in_process.items():
        print(f"in process, GET /users/{{id}} on the {name}: {describe(cpu)} CPU µs/req")
    for name, servers_seen in answered.items():
        print(f"reads answered by the {name} app's servers: {servers_seen}")
    errors = sum(run.errors for got in runs.values() for run in got)
    if errors:
        sys.exit(f"{errors} request(s) failed")
    if answered["standby"].get("primary", 0) > answered["standby"].get("standby-0", 0) / 100:
        sys.exit("more than 1 % of the standby app's reads went to the primary")


if __name__ == "__main__":
    main()
