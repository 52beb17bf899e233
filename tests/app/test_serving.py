"""`make serve`, production's command: it migrates, then serves from an environment of the
runtime dependencies only.

The rest is proven where it lives: the runtime's serving (workers, their pools, SIGTERM,
MIGRATE_ON_START, refusing to start without DATABASE_URL) on its probe app
(runtime/tests/scaleout/test_serving.py, runtime/tests/service/test_serving.py); `make
run` stopped by a signal in harness/tests/test_make_run_signals.py, and by Ctrl-C to
make's own pid in .ci/readme-commands."""

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from pg_harness.served import Served
from pg_harness.server import RunDatabases
from pg_runtime.testing import role_env
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow


@pytest.fixture
async def unmigrated_database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_make_serve", migrated=False) as url:
        yield url


async def test_make_serve_migrates_and_serves_from_the_runtime_only_environment(
    unmigrated_database: URL,
) -> None:
    env = role_env(unmigrated_database)
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
