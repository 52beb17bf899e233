"""The dev wrapper (`python -m pg_harness.embedded`) serving the probe with two workers:
serve, answer /health, stop clean on Ctrl-C; `python -m probe` and `uvicorn probe.main:app`
without DATABASE_URL refuse to start. The template's tests/app/test_serving.py runs its own
commands (`make run`, `python main.py`, `make serve`)."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pg_harness.processes import free_port, is_running, postmaster_pid, reachable_dir, wait_until
from served_probe import PROBE_COMMAND, probe_env

pytestmark = pytest.mark.slow


@pytest.fixture
def dev_data_dir() -> Iterator[Path]:
    # Reachable by `nobody` (pytest's tmp_path is 0700 under root), and not your .pgdata.
    with reachable_dir("test-serving-") as parent:
        yield parent / "dev"


def serve_and_stop(command: list[str], dev_data_dir: Path, workers: int) -> dict[str, object]:
    """Start `command`, wait for /health, press Ctrl-C; return the health answer."""
    port = free_port()
    env = probe_env(
        dict(os.environ)
        | {
            "EMBEDDED_PGDATA": str(dev_data_dir),
            "PORT": str(port),
            "METRICS_PORT": str(free_port()),  # tests serve side by side
            "WORKERS": str(workers),
        }
    )
    log = dev_data_dir.parent / "served.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            command,
            env=env,
            start_new_session=True,  # a process group of its own, as in a terminal
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as served,
    ):
        try:
            answer: dict[str, object] = {}

            def healthy() -> bool:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                except httpx.TransportError:
                    return False
                answer.update(response.json(), status_code=response.status_code)
                return True

            assert wait_until(healthy, seconds=300), (
                f"no /health answer; it said:\n{log.read_text()}"
            )
            server_pid = postmaster_pid(dev_data_dir)
            assert server_pid is not None
        finally:
            os.killpg(served.pid, signal.SIGINT)  # Ctrl-C
            served.wait(timeout=120)
    assert wait_until(lambda: not is_running(server_pid)), "embedded server left running"
    assert postmaster_pid(dev_data_dir) is None
    return answer


def test_the_dev_wrapper_serves_two_workers_on_the_embedded_server(dev_data_dir: Path) -> None:
    command = [sys.executable, "-m", "pg_harness.embedded", *PROBE_COMMAND]

    answer = serve_and_stop(command, dev_data_dir, workers=2)

    assert answer == {"status": "ok", "database": "reachable", "status_code": 200}


@pytest.mark.parametrize(
    "command",
    [
        PROBE_COMMAND,
        [sys.executable, "-m", "uvicorn", "probe.main:app"],
    ],
    ids=["python -m probe", "uvicorn probe.main:app"],
)
def test_production_commands_refuse_to_start_without_database_url(
    command: list[str], dev_data_dir: Path
) -> None:
    # The suite's environment has no DATABASE_URL and reads no .env (runtime/tests/conftest.py).
    env = probe_env(
        dict(os.environ) | {"EMBEDDED_PGDATA": str(dev_data_dir), "PORT": str(free_port())}
    )

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stdout + result.stderr
    assert not dev_data_dir.exists(), "an embedded server was started"
