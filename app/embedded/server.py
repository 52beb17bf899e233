"""Start and stop one PostgreSQL server in a data directory of our own."""

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from app.embedded.account import Account, server_account
from app.embedded.binaries import bin_dir

SUPERUSER = "postgres"

# For test servers: nothing they hold must survive a crash (a kept test template is rebuilt
# by `make clean-db`), so skip the work that makes data durable.
_NOT_DURABLE = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    throwaway: bool = False  # data removed when the server stops
    durable: bool = True  # False: fsync off, for test data only
    account: Account = field(default_factory=server_account)
    _guard: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _port: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._bin = bin_dir(self.account)

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory, if any."""
        if not (self.data_dir / "postmaster.pid").exists():
            return None
        status = self.account.run(
            [str(self._bin / "pg_ctl"), "status", "-D", str(self.data_dir)], capture_output=True
        )
        if status.returncode != 0:
            return None
        # postmaster.pid, line 4: the port (https://www.postgresql.org/docs/current/storage-file-layout.html)
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return int(lines[3])

    def start(self) -> URL:
        """Initialise the data directory if new, start the server, return its admin URL."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        # The guard starts first, so no moment exists where a server runs unguarded.
        self._guard = subprocess.Popen(
            [sys.executable, "-m", "app.embedded.guard", str(self._bin), str(self.data_dir)]
            + (["--remove"] if self.throwaway else []),
            stdin=subprocess.PIPE,
            start_new_session=True,  # out of the terminal's process group: Ctrl-C is ours to handle
        )
        for _attempt in range(3):
            port = _free_port()
            if self._pg_ctl_start(port):
                self._port = port
                return server_url(port)
        self.stop()
        raise RuntimeError(f"embedded PostgreSQL did not start; see {self.data_dir / 'server.log'}")

    def restart(self, downtime: float = 0.0) -> None:
        """Stop the server (fast: open connections are cut), wait, start it on the same port.

        For tests of what clients do while their server goes away and comes back.
        """
        assert self._guard is not None, "restart() needs a server that start() started"
        self.account.run(
            [
                str(self._bin / "pg_ctl"),
                "stop",
                "--wait",
                "--mode",
                "fast",
                "-D",
                str(self.data_dir),
            ],
            check=True,
            capture_output=True,
        )
        time.sleep(downtime)
        if not self._pg_ctl_start(self._port):
            raise RuntimeError(
                f"embedded PostgreSQL did not restart; see {self.data_dir / 'server.log'}"
            )

    def stop(self) -> None:
        """Stop the server (and, for a throw-away one, remove its data) through the guard."""
        if self._guard is None:
            return
        assert self._guard.stdin is not None
        self._guard.stdin.close()
        self._guard.wait()
        self._guard = None

    def _initdb(self) -> None:
        self.account.own(self.data_dir)
        self.account.run(
            [
                str(self._bin / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",  # listens on 127.0.0.1 only
                "--encoding",
                "UTF8",
                "--no-locale",  # the machine's locales do not matter, and sorting is fast
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
        )

    def _pg_ctl_start(self, port: int) -> bool:
        settings = {
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            # TCP only: a socket deep in the data directory can pass the 107-byte path limit.
            "unix_socket_directories": "",
        }
        if self.throwaway or not self.durable:
            settings |= _NOT_DURABLE
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        started = self.account.run(
            [
                str(self._bin / "pg_ctl"),
                "start",
                "--wait",
                "--silent",
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(self.data_dir / "server.log"),
                "--options",
                options,
            ],
            capture_output=True,
        )
        return started.returncode == 0


def server_url(port: int, database: str = "postgres") -> URL:
    return URL.create("postgresql+asyncpg", SUPERUSER, None, "127.0.0.1", port, database)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
