"""The data folder of a streaming standby: its primary's, copied by `pg_basebackup -R`."""

import os
import shutil
from pathlib import Path

from sqlalchemy.engine import URL

from pg_harness.embedded.account import Account
from pg_harness.embedded.binaries import bin_dir

# pg_basebackup writes the copy file by file, which tmpfs does many times faster than a
# disk: most of a standby's start. Docker's /dev/shm, 64 MB, is too small for a copy.
_IN_MEMORY = Path("/dev/shm")
_ROOM_IN_MEMORY = 1 << 30


def standby_parent() -> Path | None:
    """Where to make a standby's data folder: in memory where it has room, else None (the
    system's temporary folder)."""
    if _IN_MEMORY.is_dir() and shutil.disk_usage(_IN_MEMORY).free > _ROOM_IN_MEMORY:
        return _IN_MEMORY
    return None


def make_standby_data(primary_url: URL, data_dir: Path, account: Account) -> None:
    """Copy the primary's data folder into `data_dir`, with how to stream from it."""
    account.own(data_dir)  # pg_basebackup runs as the account, which cannot write its parent
    # The caller's PGHOST, PGSSLMODE and the like would change what -R writes.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    # The password travels in the environment: every local account can read a command
    # line (/proc/<pid>/cmdline). -R writes it into primary_conninfo, which the standby
    # needs to log in, in postgresql.auto.conf (0600 in the 0700 folder, as superuser.password).
    env["PGPASSWORD"] = primary_url.password or ""
    copied = account.run(
        [
            str(bin_dir(account) / "pg_basebackup"),
            "--pgdata",
            str(data_dir),
            "--write-recovery-conf",
            "--wal-method",
            "stream",
            "--checkpoint",
            "fast",
            "--no-sync",  # the copy is thrown away with the test
            "--no-manifest",  # and never verified
            "--host",
            primary_url.host or "127.0.0.1",
            "--port",
            str(primary_url.port or 5432),
            "--username",
            primary_url.username or "postgres",
            "--no-password",
        ],
        env=env,
        capture_output=True,
    )
    if copied.returncode != 0:
        raise RuntimeError(f"pg_basebackup could not copy the primary: {copied.stderr.strip()}")
    # The primary's log: the standby's own starts empty.
    (data_dir / "server.log").unlink(missing_ok=True)
