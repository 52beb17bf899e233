"""An app a test serves (pg_harness.served) ends with the pytest run that started it, however
that run ends: in its own session, no signal to the run reaches it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from pg_harness.processes import group_members, wait_until
from pg_harness.project import project
from pg_harness.served import STOP_TIMEOUT
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow

# Run by a pytest of its own: serves until killed.
SERVING_TEST = """\
import os
import time
from pathlib import Path

from pg_harness.served import Served


def test_serve_until_killed() -> None:
    env = {"DATABASE_URL": os.environ["SERVED_DATABASE_URL"], "WORKERS": "2"}
    # The run's owner: what this test is about is the process, not the role it logs in as.
    with Served(env | {"DB_ROLE_CHECK": "warn"}) as served:
        assert served.process is not None
        served.wait_for_log("Application startup complete.", 2)  # both workers serve
        Path(os.environ["SERVED_AT"]).write_text(f"{served.process.pid} {served.url}")
        time.sleep(600)
"""
# The app stops in seconds on SIGTERM; the guard SIGKILLs what is left after STOP_TIMEOUT.
STOPPED_WITHIN = STOP_TIMEOUT + 30


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def serve_then_kill_the_run(
    folder: Path, database: URL, parallel: list[str], signo: signal.Signals, to_group: bool
) -> None:
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_serving.py").write_text(SERVING_TEST)
    served_at = folder / "served"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEST_"))}
    env |= {
        "SERVED_DATABASE_URL": database.render_as_string(hide_password=False),
        "SERVED_AT": str(served_at),
    }
    # Not this run's plugin: the serving test needs no database of the run's own.
    options = ["-p", "no:pg_harness", "-p", "no:cacheprovider", "--rootdir", str(folder)]
    options += ["-c", str(folder / "pytest.ini"), str(folder / "test_serving.py")]
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", *parallel, *options],
        cwd=project().root,  # where Served finds main.py
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    group = None
    try:
        assert wait_until(lambda: served_at.exists(), 180), "the app was not served"
        pid, url = served_at.read_text().split()
        group = int(pid)  # Served starts it in a session, so a group, of its own
        assert len(group_members(group)) >= 3  # the supervisor and its 2 workers

        if to_group:  # every process of the run at once, as a cancelled CI job goes
            os.killpg(run.pid, signo)
        else:  # the run's main process only, as `kill PID` does
            run.send_signal(signo)

        assert wait_until(lambda: not group_members(group), STOPPED_WITHIN), "the app outlived it"
        assert not answers(url)
    finally:
        for leader in (run.pid, group):
            if leader is not None and group_members(leader):
                os.killpg(leader, signal.SIGKILL)
        run.wait()


@pytest.mark.parametrize(
    ("parallel", "signo", "to_group"),
    [
        ([], signal.SIGTERM, False),
        ([], signal.SIGKILL, False),
        # xdist's worker, told by its gateway that the run has gone, interrupts the test
        # (5 s on), so its `with Served` may stop the app, then exits (15 s on) whether
        # that is done or not.
        (["-n", "2"], signal.SIGTERM, False),
        (["-n", "2"], signal.SIGKILL, True),
    ],
    ids=["pytest-SIGTERM", "pytest-SIGKILL", "xdist-SIGTERM", "xdist-SIGKILL-to-all"],
)
async def test_a_served_app_ends_with_the_pytest_run_that_started_it(
    parallel: list[str],
    signo: signal.Signals,
    to_group: bool,
    fresh_database: URL,
    tmp_path: Path,
) -> None:
    await anyio.to_thread.run_sync(
        serve_then_kill_the_run, tmp_path, fresh_database, parallel, signo, to_group
    )
