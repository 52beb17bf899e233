"""What observability costs: bench/throughput.py's GETs with it off, on, and with traces.

    python -m bench.observability [--duration 5] [--rounds 5]

One worker, four configurations served side by side on one database:
- quiet: no metrics, no access lines (the floor, for reference);
- off: no metrics, text logs with an access line per request (the defaults before
  metrics and JSON logs existed: uvicorn wrote that line);
- on: metrics, LOG_FORMAT=json with a JSON access line per request (written to a file);
- traces: on, plus OpenTelemetry traces exported over OTLP/HTTP to a sink in this process.
wrk saturates GET /users/{id} and GET /users on each in turn, in a rotating order per
round, so that they share the machine's noise. Reported per endpoint and configuration:
req/s and CPU ms per request (the server processes' user + system time over the run),
the median over rounds with the lowest and highest, and each against off (the issue's
bound for on: within 10 %). Any failed request fails the run.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pg_harness.databases import drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.processes import free_port
from pg_harness.served import Served
from pg_runtime.database_url import to_asyncpg_url

from bench.throughput import (
    ENDPOINTS,
    POOLS,
    Run,
    alternated_runs_arguments,
    describe,
    rotated,
    with_database,
    wrk,
)

GETS = [endpoint for endpoint in ENDPOINTS if endpoint.paced_path is not None]
QUIET = {"METRICS_ENABLED": "false", "LOG_FORMAT": "text", "ACCESS_LOG": "false"}
OFF = QUIET | {"ACCESS_LOG": "true"}
ON = {"METRICS_ENABLED": "true", "LOG_FORMAT": "json", "ACCESS_LOG": "true"}


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that takes every batch and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def otlp_sink(stack: ExitStack) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_port}"


def main() -> None:
    args = alternated_runs_arguments(__doc__.splitlines()[0])
    with ExitStack() as stack:
        if given := os.environ.get("TEST_DATABASE_URL"):
            admin_url = to_asyncpg_url(given)
        else:
            embedded = EmbeddedPostgres(
                Path(tempfile.mkdtemp(prefix="bench-postgres-")), throwaway=True
            )
            stack.callback(embedded.stop)
            admin_url = embedded.start()
        database = asyncio.run(with_database(admin_url))
        stack.callback(lambda: asyncio.run(drop_database(admin_url, database.database or "")))
        direct = {
            "DATABASE_URL": database.render_as_string(hide_password=False),
            "WORKERS": "1",
            "DB_ROLE_CHECK": "warn",  # the bench's admin: start anyway (docs/roles.md)
        }
        traces = ON | {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_sink(stack),
            "OTEL_SERVICE_NAME": "bench",
        }
        configs = {"quiet": QUIET, "off": OFF, "on": ON, "traces": traces}
        servers = {
            name: stack.enter_context(Served(POOLS | direct | config))
            for name, config in configs.items()
        }
        warm_up = argparse.Namespace(**{**vars(args), "duration": 2})
        for served in servers.values():
            for endpoint in GETS:
                wrk(served, endpoint.wrk_script, warm_up, "warm")
        runs: dict[tuple[str, str], list[Run]] = {}
        for number in range(args.rounds):
            for endpoint in GETS:
                for name in rotated(list(servers), number):
                    run = wrk(servers[name], endpoint.wrk_script, args, f"o{number}{name}")
                    runs.setdefault((endpoint.name, name), []).append(run)
                    print(
                        f"round {number + 1} {endpoint.name:16} {name:7}"
                        f"{run.per_second:8.0f} req/s {run.cpu_ms_per_request:6.2f} CPU ms/req"
                        f"  errors {run.errors}",
                        flush=True,
                    )
    print(f"\nmedian [lowest-highest] over {args.rounds} rounds of {args.duration} s, 1 worker")
    for endpoint in GETS:
        for name in configs:
            got = runs[endpoint.name, name]
            print(
                f"{endpoint.name:16} {name:7} req/s {describe([r.per_second for r in got])}"
                f"   CPU ms/req {describe([r.cpu_ms_per_request for r in got])}"
            )
        off = statistics.median(r.per_second for r in runs[endpoint.name, "off"])
        for name in ("quiet", "on", "traces"):
            other = statistics.median(r.per_second for r in runs[endpoint.name, name])
            print(f"{endpoint.name:16} {name} against off: {100 * (other / off - 1):+.1f} % req/s")
    errors = sum(run.errors for got in runs.values() for run in got)
    if errors:
        sys.exit(f"{errors} request(s) failed")


if __name__ == "__main__":
    main()
