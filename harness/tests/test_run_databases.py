"""The harness's own promises: runs never drop each other's databases, Ctrl-C leaves nothing."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from pg_harness import processes
from pg_harness.databases import (
    KEPT_PREFIX,
    LOCK_CLASS,
    PREFIX,
    TestRun,
    admin_engine,
    create_database,
    database_names,
    drop_database,
    kept_templates_prefix,
)
from pg_harness.processes import wait_until
from pg_harness.project import project
from pg_harness.server import RunDatabases
from pg_harness.urls import with_database
from sqlalchemy import text
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow


async def as_admin(admin_url: URL, sql: str) -> None:
    """Run `sql` past the harness: what a person does by hand."""
    engine = admin_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


async def create_unmarked(admin_url: URL, name: str) -> None:
    await as_admin(admin_url, f'CREATE DATABASE "{name}"')


async def drop_unmarked(admin_url: URL, name: str) -> None:
    await as_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}"')


async def test_drop_database_leaves_a_database_the_harness_did_not_make(
    run_databases: RunDatabases,
) -> None:
    name = f"{PREFIX}1_someone_elses"
    await create_unmarked(run_databases.admin_url, name)
    try:
        await drop_database(run_databases.admin_url, name)

        assert name in await database_names(run_databases.admin_url, PREFIX)
    finally:
        await drop_unmarked(run_databases.admin_url, name)


async def test_runs_lock_in_one_database_whatever_their_admin_url_names(
    run_databases: RunDatabases,
) -> None:
    first = await TestRun.begin(run_databases.admin_url)
    other_database = with_database(run_databases.admin_url, "template1")
    try:
        second = await TestRun.begin(other_database)
        try:
            held = await second._lock.scalar(
                text("SELECT NOT pg_try_advisory_lock(:class, :run)"),
                {"class": LOCK_CLASS, "run": first.number},
            )
        finally:
            await second.end()
    finally:
        await first.end()

    assert held, "a run with another admin database did not see a live run's lock"


async def test_a_run_drops_a_dead_runs_leftovers_but_never_a_live_runs(
    run_databases: RunDatabases,
) -> None:
    admin_url = run_databases.admin_url
    live = await TestRun.begin(admin_url)
    dead = await TestRun.begin(admin_url)
    live_db = await create_database(admin_url, live.database("leftover"))
    dead_db = await create_database(admin_url, dead.database("leftover"))
    # Looks like ours but is not: no run number. The harness must never touch it.
    stranger = f"{PREFIX}x_not_a_run_{live.number}"
    await create_database(admin_url, stranger)
    # A dead run's name, but not made by the harness (no MARK): someone's own database.
    unmarked = dead.database("not_ours")
    await create_unmarked(admin_url, unmarked)
    # A crash: the run's connection (and with it its lock) goes, its databases stay.
    await dead._lock.close()
    await dead._engine.dispose()
    try:
        later = await TestRun.begin(admin_url)
        await later.end()

        left = await database_names(admin_url, PREFIX)
        assert live_db.database in left, "a live run's database was dropped"
        assert dead_db.database not in left, "a dead run's leftover was kept"
        assert stranger in left, "a database that is not a run's was dropped"
        assert unmarked in left, "a database the harness did not mark was dropped"
    finally:
        await live.end()
        await drop_database(admin_url, stranger)
        await drop_unmarked(admin_url, unmarked)
        await drop_database(admin_url, dead_db.database or "")
    assert live_db.database not in await database_names(admin_url, PREFIX)


async def test_runs_share_one_kept_template_and_the_newest_replaces_older_ones(
    run_databases: RunDatabases,
) -> None:
    admin_url = run_databases.admin_url
    # Names of this project's shape, as if the migrations had changed twice.
    project = kept_templates_prefix()
    older, newer = f"{project}{'0' * 16}", f"{project}{'1' * 16}"
    first, second = await TestRun.begin(admin_url), await TestRun.begin(admin_url)
    try:
        async with anyio.create_task_group() as runs:
            runs.start_soon(first.kept_template, older)
            runs.start_soon(second.kept_template, older)
        assert first.template_builds + second.template_builds == 1, "built by both runs"

        third = await TestRun.begin(admin_url)
        try:
            await third.kept_template(newer)
            assert third.template_builds == 1
            left = await database_names(admin_url, KEPT_PREFIX)
            assert older in left, "a template that live runs clone from was dropped"
        finally:
            await third.end()
        await first.end()
        await second.end()

        fourth = await TestRun.begin(admin_url)
        try:
            await fourth.kept_template(newer)
            assert fourth.template_builds == 0, "a kept template was built again"
        finally:
            await fourth.end()
        left = await database_names(admin_url, KEPT_PREFIX)
        assert older not in left, "an older template was kept once no run used it"
        assert run_databases.template in left, "this run's own template was dropped"
    finally:
        for run in (first, second):
            await run.end()  # a no-op the second time: its lock connection is closed
        for name in (older, newer):
            await drop_database(admin_url, name)


INTERRUPTED_TEST = """
import os
from pathlib import Path

import anyio


async def test_waits_for_ctrl_c(database_url, fresh_database):
    Path(os.environ["READY_FILE"]).write_text("ready")
    await anyio.sleep(120)
"""


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    # The inner run's embedded server runs as `nobody`: pytest's tmp_path is 0700 under root.
    with processes.reachable_dir("test-interrupt-") as path:
        yield path


def processes_mentioning(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("server", ["given server", "embedded server"])
async def test_ctrl_c_during_a_parallel_run_leaves_no_database_and_no_server(
    run_databases: RunDatabases, reachable_tmp: Path, server: str
) -> None:
    """`make test`, Ctrl-C while a test runs: every database and server of that run is gone."""
    # Processes and waiting block: a thread of their own, off this worker's event loop.
    await anyio.to_thread.run_sync(interrupt_a_run, run_databases, reachable_tmp, server)


def interrupt_a_run(run_databases: RunDatabases, reachable_tmp: Path, server: str) -> None:
    admin_url = run_databases.admin_url
    (reachable_tmp / "test_interrupted.py").write_text(INTERRUPTED_TEST)
    ready = reachable_tmp / "ready"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    data_dir = reachable_tmp / "pgdata"  # the inner run's kept test server, not yours
    env |= {"READY_FILE": str(ready), "TEST_PGDATA": str(data_dir)}
    env.pop("TEST_DATABASE_URL", None)
    if server == "given server":
        env["TEST_DATABASE_URL"] = admin_url.render_as_string(hide_password=False)
    ours = f"{PREFIX}{run_databases.run}_"
    before = anyio.from_thread.run(database_names, admin_url, PREFIX)

    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            # Ctrl-C must reach the inner run even when this one was started with SIGINT
            # ignored (a background job of a non-interactive shell), which it inherits.
            "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler);"
            " sys.exit(pytest.main(sys.argv[1:]))",
            "-n",
            "2",
            "-q",
            f"--rootdir={project().root}",
            "-c",
            str(project().root / "pyproject.toml"),
            str(reachable_tmp / "test_interrupted.py"),
        ],
        cwd=project().root,
        env=env,
        start_new_session=True,  # its own process group, as in a terminal
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as inner:
        try:
            # Generous: this bounds a hang, it does not time anything (the machine is shared).
            started = wait_until(lambda: ready.exists() or inner.poll() is not None, seconds=300)
            if inner.poll() is not None:
                pytest.fail(f"the inner run ended before its test:\n{inner.communicate()[0]}")
            assert started, "the inner run never reached its test"
            if server == "given server":
                during = anyio.from_thread.run(database_names, admin_url, PREFIX) - before
                inner_databases = {n for n in during if not n.startswith(ours)}
                # The worker's clone and the test's fresh database (the template is kept).
                assert len(inner_databases) >= 2, inner_databases
            servers = processes_mentioning(str(data_dir))
            assert bool(servers) == (server == "embedded server")

            os.killpg(inner.pid, signal.SIGINT)  # Ctrl-C goes to the whole foreground group
            output, _ = inner.communicate(timeout=300)
        finally:
            if inner.poll() is None:
                os.killpg(inner.pid, signal.SIGKILL)
                inner.communicate()

    assert inner.returncode == 2, output  # pytest's "interrupted"
    assert "KeyboardInterrupt" in output
    if server == "given server":
        assert not inner_databases & anyio.from_thread.run(database_names, admin_url, PREFIX)
    assert wait_until(lambda: not processes_mentioning(str(data_dir)), seconds=60)
    # The data directory itself is kept on purpose: it holds the migrated template.
    assert (data_dir / "PG_VERSION").exists() == (server == "embedded server")


def test_clean_db_removes_no_folder_the_harness_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "my-data"
    precious.mkdir()
    (precious / "PG_VERSION").write_text("18\n")
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env["TEST_PGDATA"] = str(precious)

    result = subprocess.run(
        [sys.executable, "-m", "pg_harness.clean_db"],
        cwd=project().root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "was not made by the test harness" in result.stderr
    assert (precious / "PG_VERSION").exists()
