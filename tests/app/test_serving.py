"""The service's own commands as the README gives them: `make run` serves, answers /health
and stops clean; `make serve` migrates and serves from the runtime-only environment;
`python main.py` and `make serve` without DATABASE_URL refuse to start.

The runtime's serving itself (workers, their pools, SIGTERM, the dev wrapper, MIGRATE_ON_START)
is proven on its probe app: runtime/tests/scaleout/test_serving.py, runtime/tests/service/."""

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from pg_harness.processes import free_port, is_running, postmaster_pid, reachable_dir, wait_until
from pg_harness.served import Served
from pg_harness.server import RunDatabases
from sqlalchemy.engine import URL

from orm.migrations import PROJECT_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def dev_data_dir() -> Iterator[Path]:
    # Reachable by `nobody` (pytest's tmp_path is 0700 under root), and not your .pgdata.
    with reachable_dir("test-serving-") as parent:
        yield parent / "dev"


def serve_and_stop(command: list[str], dev_data_dir: Path, workers: int) -> dict[str, object]:
    """Start `command`, wait for /health, press Ctrl-C; return the health answer."""
    port = free_port()
    env = os.environ | {
        "EMBEDDED_PGDATA": str(dev_data_dir),
        "PORT": str(port),
        "WORKERS": str(workers),
    }
    log = dev_data_dir.parent / "served.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
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


def test_make_run_migrates_serves_and_stops_the_server_on_ctrl_c(dev_data_dir: Path) -> None:
    answer = serve_and_stop(["make", "--no-print-directory", "run"], dev_data_dir, workers=1)

    assert answer == {"status": "ok", "database": "reachable", "status_code": 200}


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "main.py"],
        ["make", "--no-print-directory", "serve"],
    ],
    ids=["python main.py", "make serve"],
)
def test_production_commands_refuse_to_start_without_database_url(
    command: list[str], dev_data_dir: Path
) -> None:
    # The suite's environment has no DATABASE_URL and reads no .env (tests/conftest.py).
    env = os.environ | {"EMBEDDED_PGDATA": str(dev_data_dir), "PORT": str(free_port())}

    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stdout + result.stderr
    assert not dev_data_dir.exists(), "an embedded server was started"


@pytest.fixture
async def unmigrated_database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_make_serve", migrated=False) as url:
        yield url


async def test_make_serve_migrates_and_serves_from_the_runtime_only_environment(
    unmigrated_database: URL,
) -> None:
    env = {"DATABASE_URL": unmigrated_database.render_as_string(hide_password=False)}
    with Served(env, command=["make", "--no-print-directory", "serve"]) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            ready = await client.get("/health/ready")
        serving_python = interpreter_of_child(served)

    assert ready.status_code == 200, ready.text  # make serve ran the migrations first
    # It served from the runtime-only environment: no test tool there.
    dev_only = await anyio.run_process([serving_python, "-c", "import pytest"], check=False)
    assert b"No module named 'pytest'" in dev_only.stderr


def interpreter_of_child(served: Served) -> str:
    """The interpreter `make serve` started: the first word of its child's command line."""
    assert served.process is not None
    pid = served.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return Path(f"/proc/{children[0]}/cmdline").read_bytes().split(b"\0")[0].decode()
