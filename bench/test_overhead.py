"""What a test costs beyond its own body: the harness's setup and teardown, per test.

    python -m bench.test_overhead [--repeat 3]

Runs the project's fast suite (the tests not marked slow) in one process, with this module
as a plugin, `--repeat` times. Per test it records the harness's part: the setup of the
fixtures that give a test its database and client (below), plus the test's whole teardown
(the rollback; the tests' own fixtures have none worth counting). Printed: the median and
90th percentile over every test, then over the tests that take `client`, and, apart, the
whole setup plus teardown, which includes the rows a test's own fixtures insert (`user`).
The first test of a run also pays for the worker's database and the app: counted, it
lands in the tail.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

import pytest

_OUT = "BENCH_TEST_OVERHEAD_FILE"
_PLUGIN = "bench.test_overhead"
# pg-harness's fixtures and the project's wiring of the app to them (tests/conftest.py).
HARNESS_FIXTURES = {
    "run_databases",
    "_worker_connection",
    "sessions_to_close",
    "worker_name",
    "database_url",
    "engine",
    "connection",
    "session",
    "app_settings",
    "app",
    "client",
    "url_for",
}

_tests: dict[str, dict[str, float]] = {}


def _entry(nodeid: str) -> dict[str, float]:
    return _tests.setdefault(nodeid, {"harness": 0.0, "whole": 0.0, "client": 0.0})


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        if fixturedef.argname in HARNESS_FIXTURES:
            _entry(request.node.nodeid)["harness"] += time.perf_counter() - started


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _entry(report.nodeid)
    if report.when == "setup":
        entry["whole"] += report.duration
    elif report.when == "teardown":
        entry["whole"] += report.duration
        entry["harness"] += report.duration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "client" in getattr(item, "fixturenames", ()):
            _entry(item.nodeid)["client"] = 1.0


def pytest_unconfigure(config: pytest.Config) -> None:
    if out := os.environ.get(_OUT):
        ran = {nodeid: entry for nodeid, entry in _tests.items() if entry["whole"]}
        Path(out).write_text(json.dumps(ran))


def _run_suite() -> dict[str, dict[str, float]]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "0", "-m", "not slow", "-p", _PLUGIN],
            env=os.environ | {_OUT: out.name},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result: dict[str, dict[str, float]] = json.loads(Path(out.name).read_text())
        return result


def _describe(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    return f"{label}: {len(ms)} tests, median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines: dict[str, list[float]] = {}
    for round_ in range(args.repeat):
        tests = list(_run_suite().values())
        figures = {
            "harness, every test": [t["harness"] for t in tests],
            "harness, tests with `client`": [t["harness"] for t in tests if t["client"]],
            "whole setup + teardown, every test": [t["whole"] for t in tests],
        }
        for label, seconds in figures.items():
            print(f"round {round_ + 1}: " + _describe(label, seconds))
            lines.setdefault(label, []).extend(seconds)
    for label, seconds in lines.items():
        print("all rounds: " + _describe(label, seconds))


if __name__ == "__main__":
    main()
