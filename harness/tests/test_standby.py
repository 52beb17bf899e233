"""The `standby` fixture: a streaming copy of the run's server that tests pause and halt."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import CompletedProcess

import asyncpg
import pytest
from pg_harness.embedded.account import Account, server_account
from pg_harness.embedded.base_backup import standby_parent
from pg_harness.embedded.followable import embedded_major_version, unfollowable_reason
from pg_harness.embedded.standby import Standby
from pg_harness.processes import is_running, postmaster_pid, reachable_dir
from pg_harness.server import RunDatabases
from pg_harness.urls import asyncpg_connect_args, asyncpg_url
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow

# The machine's own PostgreSQL, whose version only is read.
MACHINE_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


async def fetch_value(url: URL, sql: str) -> object:
    connection = await asyncpg.connect(**asyncpg_connect_args(url))
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def execute(url: URL, sql: str) -> None:
    connection = await asyncpg.connect(**asyncpg_connect_args(url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def primary_table(fresh_database: URL) -> URL:
    """A database of the test's own on the primary, with a table `probe` of one row."""
    await execute(
        fresh_database, "CREATE TABLE probe (body text); INSERT INTO probe VALUES ('first')"
    )
    return fresh_database


def embedded_only() -> None:
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("about the run's embedded server: run without TEST_DATABASE_URL")


async def test_a_row_committed_on_the_primary_is_read_on_the_standby_once_caught_up(
    standby: Standby, primary_table: URL
) -> None:
    await standby.wait_caught_up()

    on_standby = standby.url(primary_table.database or "")
    assert await fetch_value(on_standby, "SELECT string_agg(body, ',') FROM probe") == "first"


async def test_the_standby_is_in_recovery_and_refuses_writes(
    standby: Standby, primary_table: URL
) -> None:
    await standby.wait_caught_up()
    on_standby = standby.url(primary_table.database or "")

    assert await fetch_value(on_standby, "SELECT pg_is_in_recovery()") is True
    with pytest.raises(asyncpg.PostgresError) as refused:
        await execute(on_standby, "INSERT INTO probe VALUES ('second')")
    assert refused.value.sqlstate == "25006"  # read_only_sql_transaction


async def test_a_row_committed_while_replay_is_paused_appears_only_after_resume(
    standby: Standby, primary_table: URL
) -> None:
    on_standby = standby.url(primary_table.database or "")
    await standby.wait_caught_up()
    await standby.pause_replay()

    await execute(primary_table, "INSERT INTO probe VALUES ('second')")
    with pytest.raises(TimeoutError, match="replay: paused"):
        await standby.wait_caught_up(seconds=0.5)
    # Received, not applied.
    assert await fetch_value(
        on_standby, "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
    )
    assert await fetch_value(on_standby, "SELECT count(*) FROM probe WHERE body = 'second'") == 0

    await standby.resume_replay()
    await standby.wait_caught_up()
    assert await fetch_value(on_standby, "SELECT count(*) FROM probe WHERE body = 'second'") == 1


async def test_a_halted_standby_refuses_connections_and_replays_on_once_resumed(
    standby: Standby, primary_table: URL
) -> None:
    on_standby = standby.url(primary_table.database or "")
    await standby.wait_caught_up()

    standby.halt()
    with pytest.raises(ConnectionRefusedError):
        await fetch_value(on_standby, "SELECT 1")
    await execute(primary_table, "INSERT INTO probe VALUES ('while halted')")
    standby.resume()

    await standby.wait_caught_up()
    assert on_standby.port == standby.url().port
    assert await fetch_value(on_standby, "SELECT count(*) FROM probe WHERE body = 'while halted'")


async def test_the_standby_streams_with_the_written_password_and_no_replication_slot(
    standby: Standby,
) -> None:
    receiver = await fetch_value(
        standby.url(), "SELECT row(status, slot_name)::text FROM pg_stat_wal_receiver"
    )
    assert receiver == "(streaming,)"
    assert await fetch_value(standby.url(), "SHOW primary_slot_name") == ""
    # It logs in with the password -R wrote, readable by the server's account only.
    written = standby.data_dir / "postgresql.auto.conf"
    assert standby.primary_url.password
    assert written_password(written.read_text()) == standby.primary_url.password
    assert standby.data_dir.stat().st_mode & 0o777 == 0o700
    assert written.stat().st_mode & 0o777 == 0o600


def written_password(auto_conf: str) -> str | None:
    """The password in primary_conninfo. libpq quotes a value with any character beyond
    [A-Za-z0-9_.] ('-' included), and the file doubles the quotes inside its own."""
    found = re.search(r"password=('*)([^' ]+)\1[ ']", auto_conf)
    return found[2] if found else None


@pytest.mark.parametrize(
    ("line", "password"),
    [
        ("primary_conninfo = 'user=postgres password=abc_D.9 host=127.0.0.1'", "abc_D.9"),
        ("primary_conninfo = 'user=postgres password=''a-b_c'' host=127.0.0.1'", "a-b_c"),
        ("primary_conninfo = 'user=postgres host=127.0.0.1'", None),
    ],
)
def test_the_written_password_is_read_quoted_or_not(line: str, password: str | None) -> None:
    assert written_password(line) == password


async def test_stop_ends_the_standby_and_removes_its_data(standby: Standby) -> None:
    pid = postmaster_pid(standby.data_dir)
    assert pid is not None
    assert is_running(pid)

    standby.stop()

    assert not is_running(pid)
    assert not standby.data_dir.exists()


@dataclass(frozen=True)
class RecordingAccount(Account):
    """The server's account, noting each command run as it."""

    commands: list[list[str]] = field(default_factory=list, compare=False)

    def run(self, args: list[str], **kwargs: object) -> CompletedProcess[str]:
        self.commands.append(args)
        return super().run(args, **kwargs)


def command_lines() -> list[bytes]:
    lines = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            lines.append((proc / "cmdline").read_bytes())
        except OSError:  # ended meanwhile
            continue
    return lines


def test_the_password_is_on_no_command_line(run_databases: RunDatabases) -> None:
    embedded_only()
    password = run_databases.admin_url.password
    assert password
    account = server_account()
    recording = RecordingAccount(account.uid, account.gid)
    with reachable_dir("standby-", standby_parent()) as parent:
        standby = Standby(run_databases.admin_url, parent / "data", account=recording)
        standby.start()
        try:
            running = command_lines()
        finally:
            standby.stop()

    assert any(Path(command[0]).name == "pg_basebackup" for command in recording.commands)
    assert not [command for command in recording.commands if password in " ".join(command)]
    assert not [line for line in running if password.encode() in line]


async def test_unfollowable_reason_names_a_server_of_another_major_version() -> None:
    try:
        reason = await unfollowable_reason(asyncpg_url(MACHINE_SERVER))
    except OSError:
        pytest.skip(f"no PostgreSQL at {MACHINE_SERVER}")

    assert reason is not None
    ours = embedded_major_version()
    assert re.fullmatch(
        rf"needs a standby: the embedded PostgreSQL {ours} cannot follow the given server's "
        r"PostgreSQL (\d+) \(TEST_DATABASE_URL\); run without TEST_DATABASE_URL to include it",
        reason,
    ), reason


async def test_unfollowable_reason_is_none_for_the_embedded_server(
    run_databases: RunDatabases,
) -> None:
    embedded_only()
    assert await unfollowable_reason(run_databases.admin_url) is None


async def test_unfollowable_reason_names_a_url_without_a_password(
    run_databases: RunDatabases,
) -> None:
    embedded_only()
    without = run_databases.admin_url._replace(password=None)  # set() ignores a None

    reason = await unfollowable_reason(without)

    assert reason is not None
    assert reason.startswith("needs a standby: the given server's URL has no password")


async def test_unfollowable_reason_names_a_server_on_another_machine(
    run_databases: RunDatabases,
) -> None:
    # Decided from the URL alone: nothing is sent there.
    elsewhere = run_databases.admin_url.set(host="db.example.org")

    reason = await unfollowable_reason(elsewhere)

    assert reason is not None
    assert "can follow a server on 127.0.0.1, not on db.example.org" in reason
