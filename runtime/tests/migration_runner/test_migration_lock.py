"""Instances that migrate at once take turns; a migration stuck behind a lock gives up.

Eight `alembic upgrade head` processes start together (a start barrier) on one empty
database whose migrations (the probe's) include a slow one: with the migration lock
(pg_runtime.migrations.lock) every revision runs exactly once and all succeed; without it
(`-x migration_lock=off`) the same run fails.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg
import pytest
from alembic.script import ScriptDirectory
from pg_harness.server import RunDatabases
from pg_harness.urls import asyncpg_connect_args
from pg_runtime.migrations.lock import MIGRATION_LOCK_KEY
from probe.migrations import ALEMBIC_INI, PROBE_ROOT, alembic_config, upgrade
from served_probe import PROBE_COMMAND, TESTS
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.slow

INSTANCES = 8
SLOW_REVISION = "5104c0de0001"
ALTER_REVISION = "5104c0de0002"
# Each process imports SQLAlchemy and Alembic before the barrier, then runs this.
_INSTANCE = """\
import sys
import alembic.config, sqlalchemy.ext.asyncio, probe.models  # before the barrier
print("ready", flush=True)
sys.stdin.read()  # the barrier: the test closes every stdin at once
alembic.config.main(sys.argv[1:])
"""


def revision_file(revision: str, down_revision: str, upgrade: str, downgrade: str) -> str:
    return f'''"""test revision {revision}"""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    {downgrade}
'''


def project_copy(tmp: Path, *revisions: tuple[str, str, str]) -> Path:
    """The probe's migrations and alembic.ini in `tmp`, plus `revisions` on top, in order.

    Returns the copy's alembic.ini; `import probe...` still finds the probe.
    """
    shutil.copytree(
        PROBE_ROOT / "alembic", tmp / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    down = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert down is not None
    for number, (revision, upgrade_code, downgrade_code) in enumerate(revisions):
        (tmp / "alembic" / "versions" / f"9{number}_{revision}.py").write_text(
            revision_file(revision, down, upgrade_code, downgrade_code)
        )
        down = revision
    ini = ALEMBIC_INI.read_text()
    ini = ini.replace("script_location = %(here)s/alembic", f"script_location = {tmp / 'alembic'}")
    ini = ini.replace("prepend_sys_path = %(here)s/..", f"prepend_sys_path = {TESTS}")
    (tmp / "alembic.ini").write_text(ini)
    return tmp / "alembic.ini"


def cli_env(database_url: URL, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DIRECT_URL")}
    env["PYTHONPATH"] = str(TESTS)
    return env | {"DATABASE_URL": database_url.render_as_string(hide_password=False)} | settings


@pytest.fixture
async def empty_db(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_lock", migrated=False) as url:
        yield url


@dataclass
class Outcome:
    exit_codes: list[int]
    outputs: list[str]
    most_waiting: int
    version: list[str]

    def upgrades(self) -> dict[str, int]:
        """How many times each revision's upgrade ran, over all instances."""
        counts: dict[str, int] = {}
        for output in self.outputs:
            for revision in re.findall(r"Running upgrade \S* ?-> (\w+)", output):
                counts[revision] = counts.get(revision, 0) + 1
        return counts


def run_instances(ini: Path, database_url: URL, *extra: str) -> tuple[list[int], list[str]]:
    """INSTANCES `alembic upgrade head` processes released at once; exit codes, outputs."""
    # MIGRATION_LOCK_TIMEOUT far below the slow revision's time: if it bounded the wait for
    # the migration lock, the waiting instances would fail.
    env = cli_env(database_url, MIGRATION_LOCK_TIMEOUT="0.5")
    args = ["-c", str(ini), *extra, "upgrade", "head"]
    with ExitStack() as stack:
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _INSTANCE, *args],
                    cwd=ini.parent,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
            for _ in range(INSTANCES)
        ]
        try:
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline().strip() == "ready"
            for process in processes:  # the barrier opens
                assert process.stdin is not None
                process.stdin.close()
            outputs = [process.stdout.read() for process in processes]  # type: ignore[union-attr]
            for process in processes:
                process.wait(timeout=300)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
    return [process.returncode for process in processes], outputs


async def waiting_for_the_lock(database_url: URL) -> int:
    """Sessions of this database waiting for the migration lock, as pg_locks shows them."""
    connection = await asyncpg.connect(**asyncpg_connect_args(database_url))
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE d.datname = current_database() AND l.locktype = 'advisory' "
                "AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1 AND NOT l.granted",
                MIGRATION_LOCK_KEY >> 32,
                MIGRATION_LOCK_KEY & 0xFFFFFFFF,
            )
        )
    finally:
        await connection.close()


async def upgrade_from_many_instances(tmp: Path, database_url: URL, *extra: str) -> Outcome:
    ini = project_copy(
        tmp,
        (
            SLOW_REVISION,
            'op.execute("SELECT pg_sleep(2)")\n'
            '    op.create_table("slow", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("slow")',
        ),
    )
    most_waiting = 0
    result: tuple[list[int], list[str]] | None = None

    async def run() -> None:
        nonlocal result
        result = await anyio.to_thread.run_sync(run_instances, ini, database_url, *extra)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        while result is None:
            most_waiting = max(most_waiting, await waiting_for_the_lock(database_url))
            await anyio.sleep(0.05)
    assert result is not None
    exit_codes, outputs = result
    connection = await asyncpg.connect(**asyncpg_connect_args(database_url))
    try:
        exists = await connection.fetchval("SELECT to_regclass('alembic_version')")
        rows = await connection.fetch("SELECT version_num FROM alembic_version") if exists else []
    finally:
        await connection.close()
    return Outcome(exit_codes, outputs, most_waiting, [row[0] for row in rows])


async def test_instances_migrating_at_once_take_turns(tmp_path: Path, empty_db: URL) -> None:
    outcome = await upgrade_from_many_instances(tmp_path, empty_db)

    log = "\n---\n".join(outcome.outputs)
    assert outcome.exit_codes == [0] * INSTANCES, log
    assert outcome.most_waiting >= 1, "no instance was seen waiting for the lock"
    all_revisions = [
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    ] + [SLOW_REVISION]
    assert outcome.upgrades() == dict.fromkeys(all_revisions, 1), log
    assert outcome.version == [SLOW_REVISION]
    print(f"\nwith the lock: at most {outcome.most_waiting} instances seen waiting in pg_locks")


async def test_without_the_lock_the_same_run_fails(tmp_path: Path, empty_db: URL) -> None:
    outcome = await upgrade_from_many_instances(tmp_path, empty_db, "-x", "migration_lock=off")

    failed = sum(code != 0 for code in outcome.exit_codes)
    ran_twice = {revision: n for revision, n in outcome.upgrades().items() if n > 1}
    assert failed or ran_twice, "8 unlocked instances all succeeded, each revision once"
    print(f"\nwithout the lock: {failed} of {INSTANCES} failed; ran more than once: {ran_twice}")


async def test_a_migration_behind_a_busy_table_fails_fast_and_rolls_back(
    tmp_path: Path, empty_db: URL
) -> None:
    engine = create_async_engine(empty_db, poolclass=NullPool)
    async with engine.connect() as connection:
        await upgrade(connection)
        # A table of the test's own, whatever the project's models are.
        await connection.execute(text("CREATE TABLE busy (id integer)"))
        await connection.commit()
    await engine.dispose()
    ini = project_copy(
        tmp_path,
        (
            ALTER_REVISION,
            'op.add_column("busy", sa.Column("colour", sa.Text(), nullable=True))',
            'op.drop_column("busy", "colour")',
        ),
    )
    reader = await asyncpg.connect(**asyncpg_connect_args(empty_db))
    try:
        # A long read: its ACCESS SHARE lock blocks ALTER TABLE's ACCESS EXCLUSIVE one.
        reading = reader.transaction()
        await reading.start()
        await reader.fetch("SELECT * FROM busy")
        started = time.monotonic()
        with anyio.fail_after(120):
            done = await anyio.run_process(
                [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
                cwd=tmp_path,
                env=cli_env(empty_db, MIGRATION_LOCK_TIMEOUT="1"),
                check=False,
                stderr=subprocess.STDOUT,
            )
        took = time.monotonic() - started
        await reading.rollback()
        column = await reader.fetchval(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'busy' AND column_name = 'colour'"
        )
        version = await reader.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await reader.close()

    output = done.stdout.decode()
    assert done.returncode != 0, output
    assert "MIGRATION_LOCK_TIMEOUT" in output, output
    assert "Traceback" not in output, output
    assert column == 0
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    print(f"\ngave up after {took:.1f} s (MIGRATION_LOCK_TIMEOUT=1)")


async def test_upgrade_from_code_leaves_the_callers_connection_as_it_was(
    empty_db: URL,
) -> None:
    engine = create_async_engine(empty_db, poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET lock_timeout = '123ms'")
        await connection.commit()

        await upgrade(connection)

        lock_timeout = await connection.scalar(text("SHOW lock_timeout"))
        held = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                "AND locktype = 'advisory'"
            )
        )
    await engine.dispose()

    assert lock_timeout == "123ms"
    assert held == 0


@pytest.fixture
async def lock_held_elsewhere(fresh_database: URL) -> AsyncIterator[URL]:
    """Another instance's migration, stuck: a session holding the migration lock."""
    holder = await asyncpg.connect(
        **asyncpg_connect_args(fresh_database), server_settings={"application_name": "stuck-deploy"}
    )
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        yield fresh_database
    finally:
        await holder.close()


@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"], PROBE_COMMAND],
    ids=["alembic upgrade head", "python -m probe with MIGRATE_ON_START"],
)
async def test_a_migration_waiting_for_a_stuck_one_says_who_and_gives_up(
    lock_held_elsewhere: URL, command: list[str]
) -> None:
    env = os.environ | {
        "PYTHONPATH": str(TESTS),
        "DATABASE_URL": lock_held_elsewhere.render_as_string(hide_password=False),
        "MIGRATION_WAIT_TIMEOUT": "2",
        "MIGRATE_ON_START": "true",
        "PORT": "1",  # never reached: start-up stops before serving
    }
    started = time.monotonic()

    with anyio.fail_after(120):
        done = await anyio.run_process(command, env=env, check=False, stderr=subprocess.STDOUT)
    output = done.stdout.decode()

    assert done.returncode != 0, output
    assert time.monotonic() - started < 60
    assert "waiting for another instance's migrations" in output
    assert "gave up after waiting 2 s (MIGRATION_WAIT_TIMEOUT)" in output
    assert "application_name 'stuck-deploy'" in output
    assert "pg_terminate_backend" in output
