"""Who may read the embedded server's secrets: under root, an account of this checkout's own,
not the shared `nobody`; every secret file created with its final mode."""

import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_harness import processes
from pg_harness.embedded import account
from pg_harness.embedded.account import (
    Account,
    account_name,
    adopt,
    server_account,
    write_secret,
)
from pg_harness.embedded.server import PASSWORD_FILE, EmbeddedPostgres
from pg_harness.processes import postmaster_pid

as_root = pytest.mark.skipif(os.getuid() != 0, reason="only root runs the server as another")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    with processes.reachable_dir("test-account-") as path:
        yield path


@pytest.fixture
def no_umask() -> Iterator[None]:
    """A umask that narrows nothing: a file's mode is then what its creator asked for."""
    before = os.umask(0)
    yield
    os.umask(before)


@pytest.mark.slow
@as_root
def test_as_root_the_server_runs_as_this_checkouts_account_and_nobody_cannot_read_it(
    reachable_dir: Path,
) -> None:
    data_dir = reachable_dir / "data"
    server = EmbeddedPostgres(data_dir, throwaway=True)
    server.start()
    try:
        pid = postmaster_pid(data_dir)
        assert pid is not None
        runs_as = os.stat(f"/proc/{pid}").st_uid
        password_file = data_dir / PASSWORD_FILE
        kept = password_file.stat()
        read_by_nobody = Account(NOBODY.pw_uid, NOBODY.pw_gid).run(
            ["cat", str(password_file)], capture_output=True
        )
    finally:
        server.stop()

    ours = pwd.getpwnam(account_name())
    assert ours.pw_name.startswith("pg-embedded-")
    assert runs_as == ours.pw_uid != NOBODY.pw_uid
    assert (kept.st_uid, stat.S_IMODE(kept.st_mode)) == (ours.pw_uid, 0o600)
    assert read_by_nobody.returncode != 0
    assert ours.pw_shell.endswith("nologin")


@as_root
def test_the_account_is_created_once_and_reused() -> None:
    first = server_account()
    account._system_account.cache_clear()  # as a new process would: look it up again

    assert server_account() == first
    assert first.uid == pwd.getpwnam(account_name()).pw_uid
    assert first.uid < 1000  # a system account


def test_each_checkout_has_an_account_of_its_own() -> None:
    assert account_name(Path("/srv/a/harness/src/pg_harness")) != account_name(
        Path("/srv/b/harness/src/pg_harness")
    )
    assert account_name() == account_name()


def test_without_root_the_server_runs_as_ourselves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 4321)
    monkeypatch.setattr(os, "getgid", lambda: 4321)

    assert server_account() == Account(4321, 4321)


@pytest.mark.usefixtures("no_umask")
def test_a_secret_file_is_created_readable_by_its_account_alone(tmp_path: Path) -> None:
    secret = tmp_path / "superuser.password"

    write_secret(secret, "hunter2", server_account())

    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.stat().st_uid == server_account().uid
    assert secret.read_text() == "hunter2"


def test_a_secret_file_is_never_written_through_what_was_planted(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    planted = tmp_path / "superuser.password"
    planted.symlink_to(elsewhere)  # another account's link, where the secret would go

    with pytest.raises(FileExistsError):
        write_secret(planted, "hunter2", server_account())
    assert not elsewhere.exists()


@as_root
def test_a_data_directory_nobody_made_is_handed_to_the_account(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "base").mkdir(parents=True)
    (data_dir / PASSWORD_FILE).write_text("x")
    for path in (data_dir, data_dir / "base", data_dir / PASSWORD_FILE):
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)

    adopt(data_dir, server_account())

    owners = {path.stat().st_uid for path in (data_dir, *data_dir.rglob("*"))}
    assert owners == {server_account().uid}


@as_root
def test_a_data_directory_whose_server_still_runs_as_nobody_is_left_alone(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n")  # a live process
    os.chown(data_dir, NOBODY.pw_uid, NOBODY.pw_gid)

    with pytest.raises(RuntimeError, match="stop it"):
        adopt(data_dir, server_account())
    assert data_dir.stat().st_uid == NOBODY.pw_uid
