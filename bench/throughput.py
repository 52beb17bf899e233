"""HTTP throughput of the ORM endpoints against the same routes on a bare asyncpg pool.

    .venv/bin/python -m bench.throughput [--duration 10] [--rounds 3] [--variants abc]
                                         [--fraction 0.5] [--set DB_POOL_PRE_PING=true ...]

One process serves both: the template's app with bench/raw_app.py's reference routes
(`/raw/users...`) mounted beside its own. Three variants: (a) 1 worker, (b) 2 workers,
(c) 2 workers through PgBouncer. For each, wrk (Debian's package) saturates GET
/users/{id} (one user, ids at random over 10,000 seeded users), GET /users
(a page of 20) and POST /users, ORM and raw in turn, and GET
/health/live (no database) as the floor. Then bench/paced.py sends the ORM GETs at a
fixed rate, half of that variant's own peak (--fraction), and reports p50 and p99 from
when each request was queued, at its due time. Variants and implementations alternate
within each round, in a rotating order, so they share the machine's noise; each figure is
the median over rounds. Any error (a socket error or a non-2xx answer) is reported and
fails the run.

The server is chosen as the tests choose it: TEST_DATABASE_URL if set (a database of our
own there, dropped at the end), else an embedded throw-away one. CPU ms per request is
the user + system time of the app's processes (supervisor and workers) over the run,
divided by its requests: steadier than requests/s on a shared machine.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pg_harness.databases import create_database, drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.pgbouncer import INSTALL_HINT, PgBouncer, pgbouncer_binary
from pg_harness.served import Served
from pg_runtime.database_url import to_asyncpg_url
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.settings import Settings
from bench.paced import PacedRun, get, paced
from orm.migrations import upgrade

USERS = 10_000
WRK_DIR = Path(__file__).resolve().parent / "wrk"
RAW_PREFIX = "/raw"


@dataclass(frozen=True)
class Endpoint:
    name: str
    wrk_script: str
    target: float  # ORM req/s at least this times raw's
    paced_path: Callable[[random.Random], str] | None  # the GETs are also sent at a fixed rate


ENDPOINTS = [
    Endpoint("GET /users/{id}", "read_user.lua", 0.5, lambda r: f"/users/{r.randint(1, USERS)}"),
    Endpoint(
        "GET /users", "list_users.lua", 0.5, lambda r: f"/users?offset={r.randint(0, USERS - 20)}"
    ),
    Endpoint("POST /users", "create_user.lua", 0.4, None),
]
FLOOR = Endpoint("GET /health/live", "live.lua", 0, None)
IMPLEMENTATIONS = ("ORM", "raw")
VARIANTS = {
    "a": "(a) 1 worker, direct",
    "b": "(b) 2 workers, direct",
    "c": "(c) 2 workers, PgBouncer",
}
P99_OVER_P50 = 3  # the most p99 may be, at half the peak rate (--fraction 0.5)


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


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (as .ci/run does)")


def alternated_runs_arguments(description: str) -> argparse.Namespace:
    """The command line of a benchmark that alternates configurations under wrk, and wrk."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds (5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    require_wrk()
    return args


def describe(values: list[float]) -> str:
    """Median [lowest-highest]."""
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


def wrk(
    served: Served,
    script: str,
    args: argparse.Namespace,
    run_id: str,
    prefix: str = "",
    token: str | None = None,
) -> Run:
    """`token`: an X-Consistency-Token every request carries (bench/wrk/common.lua)."""
    assert served.process is not None
    env = os.environ | {
        "BENCH_WRK_DIR": str(WRK_DIR),
        "BENCH_USERS": str(USERS),
        "BENCH_RUN": run_id,
        "BENCH_PREFIX": prefix,
    }
    if token is not None:
        env["BENCH_TOKEN"] = token
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
    """Migrate and seed USERS users."""
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


def variants(
    stack: ExitStack, chosen: str, database: URL, admin_url: URL, settings: dict[str, str]
) -> dict[str, Served]:
    direct = database.render_as_string(hide_password=False)
    # DB_ROLE_CHECK: the bench's admin login, started anyway (docs/roles.md).
    quiet = {"ACCESS_LOG": "false", "LOG_LEVEL": "warning", "DB_ROLE_CHECK": "warn"} | settings
    configs = {
        VARIANTS["a"]: {"DATABASE_URL": direct, "WORKERS": "1"},
        VARIANTS["b"]: {"DATABASE_URL": direct, "WORKERS": "2"},
    }
    if "c" in chosen:
        # A server connection for every client connection the two workers may open, the ORM
        # pools' and the raw pool's: the benchmark measures PgBouncer, not waiting for it.
        bouncer = PgBouncer(admin_url, pool_size=2 * per_worker(settings))
        stack.callback(bouncer.stop)
        bouncer.start()
        configs[VARIANTS["c"]] = {
            "DATABASE_URL": bouncer.url_for(database).render_as_string(hide_password=False),
            "DB_BEHIND_PGBOUNCER": "true",
            "DIRECT_URL": direct,
            "WORKERS": "2",
        }
    command = [sys.executable, "-m", "bench.raw_app"]
    return {
        name: stack.enter_context(Served(quiet | env, command=command))
        for name, env in configs.items()
        if name[1] in chosen
    }


# The three variants serve side by side from one PostgreSQL server, whose connections
# (max_connections, 100 by default) must hold all their pools at once: sized as the
# production example in docs/production.md, unless --set says otherwise.
POOLS = {"DB_POOL_SIZE": "5", "DB_READ_POOL_SIZE": "5"}


def per_worker(settings: dict[str, str]) -> int:
    """Connections one worker may open: the ORM's two pools and the raw routes' pool."""
    fields = Settings.model_fields

    def size(name: str) -> int:
        return int(settings.get(name.upper(), fields[name].default))

    writes = size("db_pool_size") + size("db_max_overflow")  # the raw pool's size too
    return writes + size("db_read_pool_size") + writes


def rotated(items: list[str], by: int) -> list[str]:
    return items[by % len(items) :] + items[: by % len(items)]


Key = tuple[str, str, str]  # variant, endpoint, implementation


def saturate(servers: dict[str, Served], args: argparse.Namespace) -> dict[Key, list[Run]]:
    """wrk at full load, every endpoint, ORM and raw, every variant, `args.rounds` times."""
    runs: dict[Key, list[Run]] = {}
    names = list(servers)
    warm_up = argparse.Namespace(**{**vars(args), "duration": 2})
    for served in servers.values():  # every worker imports, connects and warms its caches
        for prefix in ("", RAW_PREFIX):
            wrk(served, ENDPOINTS[0].wrk_script, warm_up, "warm", prefix)
    for number in range(args.rounds):
        for endpoint in [*ENDPOINTS, FLOOR]:
            implementations = IMPLEMENTATIONS if endpoint is not FLOOR else ("",)
            for name in rotated(names, number):
                for implementation in rotated(list(implementations), number):
                    prefix = RAW_PREFIX if implementation == "raw" else ""
                    run_id = f"{os.getpid()}r{number}{name[1]}{implementation}"
                    run = wrk(servers[name], endpoint.wrk_script, args, run_id, prefix)
                    runs.setdefault((name, endpoint.name, implementation), []).append(run)
                    print(
                        f"round {number + 1} {name:26} {endpoint.name:16} {implementation:4}"
                        f"{run.per_second:8.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                        f"p99 {run.p99_ms:7.2f} ms  {run.cpu_ms_per_request:5.2f} CPU ms/req  "
                        f"errors {run.errors}",
                        flush=True,
                    )
    return runs


def at_fixed_rate(
    servers: dict[str, Served], peaks: dict[Key, float], args: argparse.Namespace
) -> dict[tuple[str, str], list[tuple[PacedRun, float]]]:
    """The ORM GETs at `args.fraction` of their peak, latencies from when each request was
    due; with CPU ms/request."""
    runs: dict[tuple[str, str], list[tuple[PacedRun, float]]] = {}
    chooser = random.Random(0)
    for number in range(args.rounds):
        for endpoint in ENDPOINTS:
            path_for = endpoint.paced_path
            if path_for is None:
                continue
            for name in rotated(list(servers), number):
                served = servers[name]
                assert served.process is not None
                rate = peaks[name, endpoint.name, "ORM"] * args.fraction
                cpu_before = process_tree_cpu_ms(served.process.pid)
                requests = [get(path_for(chooser)) for _ in range(round(rate * args.duration))]
                run = paced(served.url, requests.__getitem__, rate, args.duration)
                cpu_ms = process_tree_cpu_ms(served.process.pid) - cpu_before
                runs.setdefault((name, endpoint.name), []).append(
                    (run, cpu_ms / max(len(run.latencies_ms), 1))
                )
                print(
                    f"round {number + 1} {name:26} {endpoint.name:16} ORM at {rate:6.0f}/s: "
                    f"{run.achieved_rate:6.0f}/s  p50 {run.percentile(50):6.2f} ms  "
                    f"p99 {run.percentile(99):7.2f} ms  errors {run.errors}",
                    flush=True,
                )
    return runs


def report(
    runs: dict[Key, list[Run]],
    fixed: dict[tuple[str, str], list[tuple[PacedRun, float]]],
    fraction: float,
) -> int:
    def median(key: Key, figure: Callable[[Run], float]) -> float:
        return statistics.median(figure(run) for run in runs[key])

    names = list(dict.fromkeys(name for name, _, _ in runs))
    print(
        f"\nSaturated (wrk), medians: ORM / raw req/s (target), CPU ms per request\n"
        f"{'variant':26} {'endpoint':16} {'ORM req/s':>9} {'raw req/s':>9} {'ORM/raw':>7} "
        f"{'target':>6} {'ORM CPU':>7} {'raw CPU':>7} {'ORM p50':>7} {'ORM p99':>7}"
    )
    peaks = {key: median(key, lambda run: run.per_second) for key in runs}
    for name in names:
        for endpoint in ENDPOINTS:
            orm, raw = (name, endpoint.name, "ORM"), (name, endpoint.name, "raw")
            ratio = peaks[orm] / peaks[raw]
            verdict = "met" if ratio >= endpoint.target else "BELOW"
            print(
                f"{name:26} {endpoint.name:16} {peaks[orm]:9.0f} {peaks[raw]:9.0f} "
                f"{ratio:7.2f} {endpoint.target:>4} {verdict:5} "
                f"{median(orm, lambda run: run.cpu_ms_per_request):7.2f} "
                f"{median(raw, lambda run: run.cpu_ms_per_request):7.2f} "
                f"{median(orm, lambda run: run.p50_ms):7.1f} "
                f"{median(orm, lambda run: run.p99_ms):7.1f}"
            )
        floor = (name, FLOOR.name, "")
        print(
            f"{name:26} {FLOOR.name:16} {peaks[floor]:9.0f} {'':>9} {'':>7} {'':>6} "
            f"{median(floor, lambda run: run.cpu_ms_per_request):7.2f}"
        )
    if fixed:
        print(
            f"\nAt a fixed rate, {fraction:g} x the ORM peak (bench/paced.py), medians; latency "
            f"from when each request was queued at its due time (target at 0.5: "
            f"p99 <= {P99_OVER_P50} x p50); "
            f"late: the generator's own lateness, p99\n{'variant':26} {'endpoint':16} "
            f"{'asked/s':>8} {'done/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p99/p50':>7} "
            f"{'':5} {'CPU ms':>6} {'late ms':>7}"
        )
    for (name, endpoint_name), results in fixed.items():
        p50 = statistics.median(run.percentile(50) for run, _ in results)
        p99 = statistics.median(run.percentile(99) for run, _ in results)
        verdict = "met" if p99 <= P99_OVER_P50 * p50 else "BELOW"
        late = statistics.median(run.percentile(99, "late_ms") for run, _ in results)
        print(
            f"{name:26} {endpoint_name:16} "
            f"{statistics.median(run.rate for run, _ in results):8.0f} "
            f"{statistics.median(run.achieved_rate for run, _ in results):8.0f} "
            f"{p50:7.2f} {p99:7.2f} {p99 / p50:7.2f} {verdict if fraction == 0.5 else '':5} "
            f"{statistics.median(cpu for _, cpu in results):6.2f} {late:7.2f}"
        )
    if VARIANTS["a"] in names and len(names) > 1:
        print()
        for endpoint in ENDPOINTS:
            line = f"ORM {endpoint.name:16}"
            a, b, c = (peaks.get((VARIANTS[v], endpoint.name, "ORM")) for v in "abc")
            if a and b:
                line += f" 2 workers / 1: {b / a:.2f}"
            if b and c:
                line += f"   PgBouncer / direct (2 workers): {c / b:.2f}"
            print(line)
    errors = sum(run.errors for results in runs.values() for run in results)
    errors += sum(run.errors for results in fixed.values() for run, _ in results)
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
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        help="the fixed rate, as a fraction of the ORM peak (0.5; p99 <= 3 x p50 is for 0.5)",
    )
    parser.add_argument(
        "--variants", default="abc", help="which to run: a 1 worker, b 2, c 2 via PgBouncer"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an app setting for every variant, e.g. DB_POOL_PRE_PING=true (repeatable)",
    )
    args = parser.parse_args()
    settings = POOLS | dict(item.split("=", 1) for item in args.set)
    require_wrk()
    if "c" in args.variants and pgbouncer_binary() is None:
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
            f"{USERS} users; up to {per_worker(settings)} connections per "
            f"worker (ORM writes, ORM reads, raw); settings {settings}",
            flush=True,
        )
        servers = variants(stack, args.variants, database, admin_url, settings)
        runs = saturate(servers, args)
        peaks = {key: statistics.median(run.per_second for run in got) for key, got in runs.items()}
        status = report(runs, at_fixed_rate(servers, peaks, args), args.fraction)
    sys.exit(status)


if __name__ == "__main__":
    main()
