"""The embedded PostgreSQL: who runs it, and that nothing outlives the process that started it."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pg_harness import processes
from pg_harness.embedded.dev import own_parent
from pg_harness.embedded.server import PASSWORD_FILE, EmbeddedPostgres
from pg_harness.processes import is_running, postmaster_pid, wait_until
from pg_harness.project import project
from pg_harness.urls import asyncpg_connect_args

pytestmark = pytest.mark.slow


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    with processes.reachable_dir("test-embedded-") as path:
        yield path


def wrapper(data_dir: Path, *command: str, **popen: object) -> subprocess.Popen[str]:
    """`python -m pg_harness.embedded COMMAND` on a dev data directory of the test's own."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EMBEDDED_PGDATA"] = str(data_dir)
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pg_harness.embedded", *command],
        cwd=project().root,
        env=env,
        text=True,
        **popen,
    )


def test_server_runs_as_an_unprivileged_account_and_stops_cleanly(reachable_dir: Path) -> None:
    data_dir = reachable_dir / "data"
    server = EmbeddedPostgres(data_dir, throwaway=True)
    server.start()
    try:
        pid = postmaster_pid(data_dir)
        assert pid is not None
        assert is_running(pid)
        owner = os.stat(f"/proc/{pid}").st_uid
        assert owner != 0  # PostgreSQL refuses root; as root we run it as `nobody`
        assert owner == (server.account.uid)
    finally:
        server.stop()
    assert not is_running(pid)
    assert not data_dir.exists()  # throw-away data is removed with the server


def test_guard_stops_the_server_when_its_starter_is_killed(reachable_dir: Path) -> None:
    data_dir = reachable_dir / "data"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from pg_harness.embedded.server import EmbeddedPostgres;"
            f"EmbeddedPostgres(Path({str(data_dir)!r}), throwaway=True).start();"
            "print('started', flush=True); time.sleep(600)",
        ],
        cwd=project().root,
        stdout=subprocess.PIPE,
        text=True,
    ) as starter:
        assert starter.stdout is not None
        assert starter.stdout.readline().strip() == "started"
        pid = postmaster_pid(data_dir)
        assert pid is not None
        assert is_running(pid)

        starter.kill()  # SIGKILL: no cleanup code of the starter runs

    assert wait_until(lambda: not is_running(pid)), "server outlived its starter"
    assert wait_until(lambda: not data_dir.exists())


def test_wrapper_gives_the_command_a_database_and_stops_the_server_after(
    reachable_dir: Path,
) -> None:
    data_dir = reachable_dir / "dev"
    probe = (
        "import asyncio, os, asyncpg;"
        "url = os.environ['DATABASE_URL'].replace('+asyncpg', '');"
        "print(asyncio.run(asyncpg.connect(url)).__class__.__name__)"
    )
    with wrapper(data_dir, sys.executable, "-c", probe, stdout=subprocess.PIPE) as done:
        output, _ = done.communicate(timeout=300)

    assert done.returncode == 0
    assert output.strip() == "Connection"
    assert postmaster_pid(data_dir) is None  # stopped: nothing left behind
    assert (data_dir / "PG_VERSION").exists()  # but the development data is kept


def test_wrapper_reuses_a_running_server_and_leaves_it_to_its_owner(reachable_dir: Path) -> None:
    data_dir = reachable_dir / "dev"
    release = reachable_dir / "release"
    with wrapper(
        data_dir,
        sys.executable,
        "-c",
        f"import os, time, pathlib\nprint(os.environ['DATABASE_URL'], flush=True)\n"
        f"while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.05)",
        stdout=subprocess.PIPE,
    ) as owner:
        try:
            assert owner.stdout is not None
            owner_url = owner.stdout.readline().strip()
            pid = postmaster_pid(data_dir)
            assert pid is not None

            with wrapper(
                data_dir,
                sys.executable,
                "-c",
                "import os; print(os.environ['DATABASE_URL'])",
                stdout=subprocess.PIPE,
            ) as guest:
                guest_url, _ = guest.communicate(timeout=180)

            assert guest.returncode == 0
            assert guest_url.strip() == owner_url  # the same server
            assert is_running(pid)  # the guest did not start it, so did not stop it
        finally:
            release.touch()
    assert wait_until(lambda: not is_running(pid))


def test_ctrl_c_stops_the_command_and_the_server(reachable_dir: Path) -> None:
    data_dir = reachable_dir / "dev"
    with wrapper(
        data_dir,
        sys.executable,
        "-c",
        "import time\ntry:\n print('up', flush=True)\n time.sleep(600)\n"
        "except KeyboardInterrupt: pass",
        stdout=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal would give it
    ) as running:
        assert running.stdout is not None
        assert running.stdout.readline().strip() == "up"
        pid = postmaster_pid(data_dir)
        assert pid is not None
        assert is_running(pid)

        os.killpg(running.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group

        assert running.wait(timeout=180) == 0
    assert wait_until(lambda: not is_running(pid))
    assert postmaster_pid(data_dir) is None


async def test_the_server_asks_for_its_generated_password(reachable_dir: Path) -> None:
    server = EmbeddedPostgres(reachable_dir / "data", throwaway=True)
    url = server.start()
    try:
        kept = reachable_dir / "data" / PASSWORD_FILE
        assert url.password
        assert url.password == kept.read_text().strip()
        assert kept.stat().st_mode & 0o077 == 0, "the password file is readable by others"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host=url.host, port=url.port, user=url.username, password="x")
        connection = await asyncpg.connect(**asyncpg_connect_args(url))
        assert await connection.fetchval("SELECT 1") == 1
        await connection.close()
    finally:
        server.stop()


def test_a_planted_data_folder_parent_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = tmp_path / "planted"
    planted.symlink_to(elsewhere)  # as another local account could, under /var/tmp

    with pytest.raises(RuntimeError, match="is not a folder of this account"):
        own_parent(planted / "data")
