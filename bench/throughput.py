"""HTTP throughput of the served app: 1 worker, 2 workers, 2 workers through PgBouncer.

    .venv/bin/python -m bench.throughput [--duration 10] [--rounds 3] [--connections 32]

wrk (Debian's package) loads the real app (`python main.py`, uvicorn, no access log) from
another process, on 127.0.0.1 only, for a bounded time: GET /users/<id> over 10,000
seeded users, and POST /users. The variants run in turn within each round, in a rotating
order, so they share the machine's noise; each figure is the median over rounds. Any
error (a socket error or a non-2xx answer) is reported and fails the run.

The server is chosen as the tests choose it: TEST_DATABASE_URL if set (a database of
our own there, dropped at the end), else an embedded throw-away one. CPU ms per request
is the user + system time of the app's processes (supervisor and workers) over the run,
divided by its requests: steadier than requests/s on a shared machine.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.database_url import to_asyncpg_url
from app.embedded.server import EmbeddedPostgres
from orm.migrations import upgrade
from tests.databases import create_database, drop_database
from tests.pgbouncer import INSTALL_HINT, PgBouncer, pgbouncer_binary
from tests.served import Served

USERS = 10_000
WRK_DIR = Path(__file__).resolve().parent / "wrk"
ENDPOINTS = {"GET /users/{id}": "read_user.lua", "POST /users": "create_user.lua"}
# Per worker: the settings' defaults, written out because the arithmetic below uses them.
POOL = {"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5"}
# 2 workers x (5 + 5) clients: a server connection for each at full load.
PGBOUNCER_POOL = 20


@dataclass
class Run:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_ms / max(self.requests, 1)


def process_tree_cpu_ms(root: int) -> float:
    """User + system CPU time of `root` and its descendants, in ms."""
    children: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def wrk(served: Served, script: str, args: argparse.Namespace, run_id: str) -> Run:
    assert served.process is not None
    env = os.environ | {
        "BENCH_WRK_DIR": str(WRK_DIR),
        "BENCH_USERS": str(USERS),
        "BENCH_RUN": run_id,
    }
    cpu_before = process_tree_cpu_ms(served.process.pid)
    done = subprocess.run(
        [
            "wrk",
            f"--threads={args.threads}",
            f"--connections={args.connections}",
            f"--duration={args.duration}s",
            "--timeout=5s",
            f"--script={WRK_DIR / script}",
            served.url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
        check=True,
    )
    cpu_ms = process_tree_cpu_ms(served.process.pid) - cpu_before
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        errors=figures["socket_errors"] + figures["status_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        cpu_ms=cpu_ms,
    )


async def prepare(database: URL) -> None:
    """Migrate and seed USERS users in one statement."""
    engine = create_async_engine(database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await upgrade(connection)
            await connection.execute(
                text(
                    "INSERT INTO user_account (email, name) "
                    "SELECT 'seed' || n || '@bench.example.org', 'user ' || n "
                    "FROM generate_series(1, :users) AS n"
                ),
                {"users": USERS},
            )
            await connection.commit()
    finally:
        await engine.dispose()


def variants(stack: ExitStack, database: URL, admin_url: URL) -> dict[str, Served]:
    direct = database.render_as_string(hide_password=False)
    quiet = {"ACCESS_LOG": "false", "LOG_LEVEL": "warning", **POOL}
    bouncer = PgBouncer(admin_url, pool_size=PGBOUNCER_POOL)
    stack.callback(bouncer.stop)
    bouncer.start()
    through = bouncer.url_for(database).render_as_string(hide_password=False)
    configs = {
        "(a) 1 worker, direct": {"DATABASE_URL": direct, "WORKERS": "1"},
        "(b) 2 workers, direct": {"DATABASE_URL": direct, "WORKERS": "2"},
        "(c) 2 workers, PgBouncer": {
            "DATABASE_URL": through,
            "DB_BEHIND_PGBOUNCER": "true",
            "DIRECT_URL": direct,
            "WORKERS": "2",
        },
    }
    return {name: stack.enter_context(Served(quiet | env)) for name, env in configs.items()}


def measure(
    servers: dict[str, Served], args: argparse.Namespace
) -> dict[tuple[str, str], list[Run]]:
    runs: dict[tuple[str, str], list[Run]] = {}
    names = list(servers)
    warm_up = argparse.Namespace(**{**vars(args), "duration": 2})
    for served in servers.values():  # every worker imports, connects and warms its caches
        wrk(served, ENDPOINTS["GET /users/{id}"], warm_up, "warm")
    for round_number in range(args.rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for endpoint, script in ENDPOINTS.items():
            for name in order:
                run_id = f"{os.getpid()}r{round_number}{name[1]}"
                run = wrk(servers[name], script, args, run_id)
                runs.setdefault((name, endpoint), []).append(run)
                print(
                    f"round {round_number + 1} {name:26} {endpoint:16} "
                    f"{run.per_second:8.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                    f"p99 {run.p99_ms:7.2f} ms  {run.cpu_ms_per_request:5.2f} CPU ms/req  "
                    f"errors {run.errors}",
                    flush=True,
                )
    return runs


def report(runs: dict[tuple[str, str], list[Run]]) -> int:
    print(
        f"\n{'variant':26} {'endpoint':16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'errors':>7}"
    )
    rate: dict[tuple[str, str], float] = {}
    errors = 0
    for (name, endpoint), results in runs.items():
        rate[name, endpoint] = statistics.median(run.per_second for run in results)
        errors += sum(run.errors for run in results)
        print(
            f"{name:26} {endpoint:16} {rate[name, endpoint]:8.0f} "
            f"{statistics.median(run.p50_ms for run in results):8.2f} "
            f"{statistics.median(run.p99_ms for run in results):8.2f} "
            f"{statistics.median(run.cpu_ms_per_request for run in results):10.2f} "
            f"{sum(run.errors for run in results):7}"
        )
    a, b, c = dict.fromkeys(name for name, _ in runs)
    print()
    for endpoint in ENDPOINTS:
        print(
            f"{endpoint:16} 2 workers / 1: {rate[b, endpoint] / rate[a, endpoint]:.2f}   "
            f"PgBouncer / direct (2 workers): {rate[c, endpoint] / rate[b, endpoint]:.2f}"
        )
    if errors:
        print(f"\n{errors} request(s) failed: every variant must answer every request")
    return 1 if errors else 0


async def with_database(admin_url: URL) -> URL:
    name = f"bench_throughput_{os.getpid()}"
    url = await create_database(admin_url, name)
    await prepare(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per variant (3)")
    parser.add_argument("--connections", type=int, default=32, help="open connections (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (as .ci/run does)")
    if pgbouncer_binary() is None:
        sys.exit(INSTALL_HINT)
    with ExitStack() as stack:
        given = os.environ.get("TEST_DATABASE_URL")
        if given:
            admin_url = to_asyncpg_url(given)
            server = f"TEST_DATABASE_URL ({admin_url.host}:{admin_url.port})"
        else:
            embedded = EmbeddedPostgres(
                Path(tempfile.mkdtemp(prefix="bench-postgres-")), throwaway=True
            )
            stack.callback(embedded.stop)
            admin_url = embedded.start()
            server = "embedded, throw-away (fsync off)"
        database = asyncio.run(with_database(admin_url))
        stack.callback(lambda: asyncio.run(drop_database(admin_url, database.database or "")))
        print(
            f"server: {server}; cpus: {os.cpu_count()}; wrk: {args.connections} connections, "
            f"{args.threads} threads, {args.duration} s x {args.rounds} rounds; "
            f"{USERS} users; per worker DB_POOL_SIZE {POOL['DB_POOL_SIZE']} + "
            f"DB_MAX_OVERFLOW {POOL['DB_MAX_OVERFLOW']}; PgBouncer pool {PGBOUNCER_POOL}",
            flush=True,
        )
        servers = variants(stack, database, admin_url)
        status = report(measure(servers, args))
    sys.exit(status)


if __name__ == "__main__":
    main()
