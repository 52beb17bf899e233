"""`make run` stopped by a signal to make's pid alone, as a process manager or an IDE's stop
button sends it: the API and the embedded PostgreSQL must stop, nothing left behind.

GNU make passes SIGTERM on to its children but SIGINT to nobody, and waits for them forever.
The Makefile here has the project's `run` recipe, without the venv's upkeep around it.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pg_harness import processes
from pg_harness.processes import free_port, group_members, is_running, postmaster_pid, wait_until
from pg_harness.project import project

pytestmark = pytest.mark.slow

MAKEFILE = f"""\
export PATH := {Path(sys.executable).parent}:$(PATH)

run:
\t{sys.executable} -m pg_harness.embedded sh -c 'alembic upgrade head && exec python main.py'
"""
# Bounds a hang: the API ends its requests and the server stops in a few seconds.
STOP_TIMEOUT = 20


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    with processes.reachable_dir("test-make-run-") as path:
        yield path


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_make_alone_stops_the_api_and_the_server(
    signo: signal.Signals, reachable_dir: Path
) -> None:
    makefile = reachable_dir / "Makefile"
    makefile.write_text(MAKEFILE)
    data_dir = reachable_dir / "dev"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"EMBEDDED_PGDATA": str(data_dir), "PORT": str(port), "METRICS_PORT": str(free_port())}
    log = reachable_dir / "make.log"
    with log.open("w") as output:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "-f", str(makefile), "run"],
            cwd=project().root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make's own group, as a terminal gives it
        )
    server = None
    try:
        assert wait_until(lambda: answers(port), 180), log.read_text()
        server = postmaster_pid(data_dir)
        assert server is not None
        assert len(group_members(make.pid)) >= 3  # make, the wrapper, the API (and workers)

        make.send_signal(signo)  # to make's pid, not to its group

        make.wait(timeout=STOP_TIMEOUT)
        assert group_members(make.pid) == [], log.read_text()
        assert not is_running(server), log.read_text()
        assert not answers(port)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)  # the wrapper's guard then stops the server
            make.wait()
        if server is not None:
            wait_until(lambda: not is_running(server))
