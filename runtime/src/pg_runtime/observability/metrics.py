"""The Prometheus metrics, whose numbers cover every worker process.

With several workers each process counts into files of its own in PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multiprocess mode) and a scrape of the metrics' port
(pg_runtime.observability.metrics_port) adds them up. `python main.py` makes that folder
before its workers start and removes it when they have stopped.

The variable must be set before this module is imported: prometheus-client picks its
storage at import.
"""

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. Requests and queries of this service take milliseconds; the top buckets catch
# the timeouts (DB_STATEMENT_TIMEOUT is 30 s by default).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request; its _count is the number of requests.",
    ["method", "route", "status"],
    buckets=_BUCKETS,
)
# Per worker process (the pid label with several workers), by pool: "write" or "read".
POOL_SIZE = Gauge(
    "db_pool_size", "Connections the pool keeps.", ["pool"], multiprocess_mode="liveall"
)
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out",
    "Connections in use by requests.",
    ["pool"],
    multiprocess_mode="liveall",
)
POOL_OVERFLOW = Gauge(
    "db_pool_overflow",
    "Connections open beyond the pool's size (DB_MAX_OVERFLOW).",
    ["pool"],
    multiprocess_mode="liveall",
)
POOL_WAIT = Histogram(
    "db_pool_wait_seconds",
    "Time a request waited for a connection, connecting included.",
    ["pool"],
    buckets=_BUCKETS,
)
POOL_TIMEOUTS = Counter(
    "db_pool_timeouts", "Requests that got no connection within DB_POOL_TIMEOUT.", ["pool"]
)
QUERY_DURATION = Histogram(
    "db_query_duration_seconds", "Time a statement took, by pool.", ["pool"], buckets=_BUCKETS
)
SLOW_QUERIES = Counter(
    "db_slow_queries", "Statements slower than DB_SLOW_QUERY_MS (each also logged).", ["pool"]
)
# Reads from standbys (pg_runtime/standbys.py), by standby: standby-0, standby-1, … in
# DATABASE_READ_URL's order.
STANDBY_LAG = Gauge(
    "db_standby_lag_bytes",
    "WAL the standby has yet to replay, as last polled.",
    ["standby"],
    multiprocess_mode="liveall",
)
STANDBY_SERVING = Gauge(
    "db_standby_serving",
    "1 while the standby serves reads; 0 while it is down, lagging or not in recovery.",
    ["standby"],
    multiprocess_mode="liveall",
)
READS = Counter(
    "db_reads",
    "GET requests' read sessions by the server that answered: primary or standby-N.",
    ["server"],
)

# A live gauge's file: gauge_liveall_<pid>.db.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(directory: str) -> None:
    """Drops the live gauges of workers that died without saying so (killed, crashed).

    Their counters and histograms stay: a total must not drop when a worker is replaced.
    """
    for pid in {
        int(m[1]) for f in Path(directory).iterdir() if (m := _LIVE_GAUGE_FILE.match(f.name))
    }:
        if not _is_alive(pid):
            # Two scrapes at once (a pair of Prometheus servers) may both remove them.
            with suppress(FileNotFoundError):
                multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def forget_this_worker() -> None:
    """At a worker's shutdown: its pool figures no longer count."""
    if directory := os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


class _EveryWorker(Collector):
    """Every worker's files, less the live gauges of workers that died."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._files = multiprocess.MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        forget_dead_workers(self._directory)
        collected: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        return collected


def scraped() -> Collector:
    """What a scrape reads: every worker's numbers (PROMETHEUS_MULTIPROC_DIR), or this
    process's own when it serves the app itself."""
    directory = os.environ.get(MULTIPROC_DIR)
    if not directory:
        return REGISTRY
    every_worker = CollectorRegistry()
    every_worker.register(_EveryWorker(directory))
    return every_worker


def exposition() -> bytes:
    """The text a scrape gets."""
    return generate_latest(scraped())


@contextmanager
def shared_across_workers(workers: int) -> Iterator[None]:
    """Around serving: with several workers, a folder where each counts (PROMETHEUS_MULTIPROC_DIR).

    Ours, made and removed here, unless the environment names one: that one is emptied
    first, since numbers left by an earlier run would be added to this one's.
    """
    if given := os.environ.get(MULTIPROC_DIR):
        for leftover in Path(given).glob("*.db"):
            leftover.unlink()
        yield
        return
    if workers == 1:
        yield
        return
    directory = tempfile.mkdtemp(prefix="prometheus-")
    os.environ[MULTIPROC_DIR] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(directory, ignore_errors=True)
