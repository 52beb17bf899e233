"""A real PgBouncer in transaction mode, started by the tests in front of a test server.

Debian's package (`apt-get install pgbouncer`) is enough; .ci/run installs it. Where it is
missing, the tests that need it are skipped and say how to install it. PgBouncer refuses
to run as root, so root runs it as the embedded server's account (`nobody`).

It runs under a guard (`python -m pg_harness.pgbouncer CONFIG`, below) that holds it as a
child: when the test process ends, however it ends, the guard reads EOF on its stdin and
stops it; if the guard itself is killed, the kernel stops PgBouncer (PR_SET_PDEATHSIG).
"""

import ctypes
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from pg_harness.embedded.account import Account, server_account
from pg_harness.processes import free_port, require_installed

INSTALL_HINT = "PgBouncer is not installed: `apt-get install pgbouncer` (as .ci/run does)"


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer")  # Debian installs it in /usr/sbin


# auth_type = scram-sha-256 with plain passwords in the auth file: PgBouncer 1.14+.
SCRAM_FROM = (1, 14)
# PgBouncer tracks prepared statements in transaction mode from 1.21, when
# max_prepared_statements is set: clients may then keep their statement caches on.
TRACKS_PREPARED_STATEMENTS_FROM = (1, 21)


def pgbouncer_version(binary: str) -> tuple[int, int]:
    """(major, minor) of the PgBouncer at `binary`, from `pgbouncer --version`."""
    shown = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    found = re.search(r"(\d+)\.(\d+)", shown.stdout)
    if found is None:
        raise RuntimeError(f"cannot read PgBouncer's version from {shown.stdout!r}")
    return int(found[1]), int(found[2])


def require_pgbouncer() -> None:
    """Skip the calling test where PgBouncer is missing; fail instead if CI said it is not."""
    require_installed(pgbouncer_binary(), "PGBOUNCER_REQUIRED", INSTALL_HINT)


@dataclass
class PgBouncer:
    """`start()` returns the URL of `server`'s databases through PgBouncer; `stop()` ends it."""

    server: URL
    # Server connections per (database, user): small, so that clients share them.
    pool_size: int = 2
    pool_mode: str = "transaction"
    # Seconds a query may wait for a server connection before its client is cut off with
    # an error; PgBouncer's default, 120, holds queries through a server restart.
    query_wait_timeout: float = 120
    # (certificate, key) files: clients must then speak TLS (client_tls_sslmode=require).
    tls: tuple[Path, Path] | None = None
    account: Account = field(default_factory=server_account)
    # Who may log in through it, with their passwords (the run's roles); clients prove
    # theirs with SCRAM, and PgBouncer logs in to the server with it. The server's own
    # login is served too if it has a password (an embedded server's).
    users: dict[str, str] = field(default_factory=dict)
    _guard: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _dir: Path | None = field(default=None, init=False, repr=False)
    _passwords: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    port: int = field(default=0, init=False)
    # Set by start(), from the version found: whether it tracks prepared statements (the
    # app's DB_PGBOUNCER_PREPARED_STATEMENTS).
    tracks_prepared_statements: bool = field(default=False, init=False)

    def start(self) -> URL:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        version = pgbouncer_version(binary)
        if version < SCRAM_FROM:
            raise RuntimeError(f"PgBouncer {version} cannot authenticate with SCRAM: 1.14+")
        self.tracks_prepared_statements = version >= TRACKS_PREPARED_STATEMENTS_FROM
        prepared = "max_prepared_statements = 200\n" if self.tracks_prepared_statements else ""
        port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self._dir.chmod(0o755)
        users = dict(self.users)
        # The server's own login too. A server on trust gives it no password: clients then
        # prove one of ours to PgBouncer (url_for gives it), and the server asks for none.
        users.setdefault(
            str(self.server.username), self.server.password or secrets.token_urlsafe(16)
        )
        self._passwords = users
        # Created with its final mode: the passwords are never readable by others.
        userlist = self._dir / "userlist.txt"
        descriptor = os.open(userlist, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.writelines(f'"{name}" "{password}"\n' for name, password in users.items())
        tls = ""
        if self.tls is not None:
            certificate, key = self._dir / "server.crt", self._dir / "server.key"
            shutil.copyfile(self.tls[0], certificate)
            shutil.copyfile(self.tls[1], key)
            key.chmod(0o600)
            tls = (
                f"client_tls_sslmode = require\nclient_tls_cert_file = {certificate}\n"
                f"client_tls_key_file = {key}\n"
            )
        config = self._dir / "pgbouncer.ini"
        config.write_text(
            f"""\
[databases]
* = host={self.server.host} port={self.server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {self._dir / "userlist.txt"}
pool_mode = {self.pool_mode}
query_wait_timeout = {self.query_wait_timeout}
default_pool_size = {self.pool_size}
max_client_conn = 500
logfile = {self._dir / "pgbouncer.log"}
pidfile =
; asyncpg sends none of the parameters PgBouncer refuses; psql and others send this one.
ignore_startup_parameters = extra_float_digits
; A restarted server: drop connections that failed, and retry logins soon. While it
; waits to retry it turns clients away at once, so this wait is how long clients keep
; failing after the server is back (its default, 15 s; runtime/tests/scaleout/test_restart.py).
server_login_retry = 0.1
{prepared}{tls}"""
        )
        if not self.account.is_self:
            for path in (self._dir, *self._dir.iterdir()):
                os.chown(path, self.account.uid, self.account.gid)
        self._guard = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pg_harness.pgbouncer",
                binary,
                str(config),
                str(self.account.uid),
            ],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        self._wait_until_listening(port)
        self.port = port
        return self.url_for(self.server)

    def url_for(self, database_url: URL) -> URL:
        """`database_url` (a database on `server`), reached through PgBouncer."""
        assert self.port, "start() first"
        password = self._passwords.get(str(database_url.username), database_url.password)
        return database_url.set(host="127.0.0.1", port=self.port, password=password)

    def stop(self) -> None:
        if self._guard is not None:
            assert self._guard.stdin is not None
            self._guard.stdin.close()
            self._guard.wait(timeout=30)
            self._guard = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def log(self) -> str:
        path = self._dir / "pgbouncer.log" if self._dir else None
        return path.read_text() if path and path.exists() else ""

    def _wait_until_listening(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self._guard is not None
            if self._guard.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"PgBouncer did not start:\n{log}")

    def __enter__(self) -> URL:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _guard(binary: str, config: str, uid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the starter decides when we stop
    user = pwd.getpwuid(uid)

    def die_with_guard() -> None:
        # Runs in the child after it has switched user, so the setting survives exec.
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    drop = {"user": uid, "group": user.pw_gid, "extra_groups": []} if uid != os.getuid() else {}
    bouncer = subprocess.Popen(  # type: ignore[call-overload]  # drop's keys are Popen's own
        [binary, "-q", config],
        cwd="/",
        preexec_fn=die_with_guard,  # the guard has one thread: safe
        **drop,
    )
    sys.stdin.buffer.read()
    bouncer.send_signal(signal.SIGINT)  # PgBouncer: immediate shutdown
    try:
        bouncer.wait(timeout=10)
    except subprocess.TimeoutExpired:
        bouncer.kill()
        bouncer.wait()


if __name__ == "__main__":
    _guard(sys.argv[1], sys.argv[2], int(sys.argv[3]))
