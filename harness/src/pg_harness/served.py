"""The app served by a real `python main.py` process, for tests and benchmarks.

`Served(env)`, or `Served(env, command=["make", "serve"])`, starts it on a free port with
the settings in `env` (DATABASE_URL and friends), waits until /health/live answers, and
stops it with SIGTERM, as a process manager does. Its output goes to a log file, `log()`.

It runs in a session of its own, out of reach of the signals that end the test run, and
under a guard (pg_harness.embedded.guard) that stops it, workers and all, when the process
that started it ends, however it ends: a killed pytest leaves no app serving.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from pg_harness.embedded.guard import release, start_guard
from pg_harness.processes import free_port
from pg_harness.project import project

# How long the app may take to stop on SIGTERM before it is killed.
STOP_TIMEOUT = 60

# Settings of the developer's environment that must not reach the served app.
_INHERITED_SETTINGS = (
    "DATABASE_URL",
    "DIRECT_URL",
    "DB_",
    "MIGRATE_",
    "WORKERS",
    "PORT",
    "LOG_",
    "ACCESS_LOG",
    "METRICS_",
    "PROMETHEUS_",
    "OTEL_",
)


class Served:
    def __init__(
        self, env: dict[str, str], command: list[str] | None = None, start_timeout: float = 120
    ) -> None:
        self._command = command or [sys.executable, "main.py"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The metrics' own port (METRICS_PORT), free too: tests serve side by side.
        self.metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        self._env = (
            {
                name: value
                for name, value in os.environ.items()
                if not name.startswith(_INHERITED_SETTINGS)
            }
            | {"PORT": str(self.port), "METRICS_PORT": str(self.metrics_port), "LOG_LEVEL": "info"}
            | env
        )
        self._start_timeout = start_timeout
        self._log = Path(tempfile.mkstemp(prefix="served-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
        self._guard: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Served":
        # The guard first: it holds the app from the moment the app's pid is written to it.
        self._guard = start_guard("group", str(STOP_TIMEOUT))
        assert self._guard.stdin is not None
        with self._log.open("w") as output:
            self.process = subprocess.Popen(
                self._command,
                cwd=project().root,
                env=self._env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a group of its own, which the guard ends
            )
        self._guard.stdin.write(f"{self.process.pid}\n".encode())
        self._guard.stdin.flush()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"main.py exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"main.py did not answer /health/live:\n{self.log()}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.unlink(missing_ok=True)

    def terminate(self) -> None:
        """SIGTERM, as a process manager sends it; `wait()` for the exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM to the app's process group, SIGKILL after STOP_TIMEOUT: done by the guard,
        which does the same if this process ends first."""
        if self._guard is None:
            return
        release(self._guard)  # once no process of the group runs: the leader is ours to reap
        self._guard = None
        assert self.process is not None
        self.process.wait()

    def wait_for_log(self, line: str, times: int = 1, seconds: float = 120) -> str:
        """The log, once `line` is in it `times` times (each worker logs its start-up)."""
        deadline = time.monotonic() + seconds
        while self.log().count(line) < times:
            if time.monotonic() > deadline:
                raise AssertionError(f"{line!r} not logged {times} time(s):\n{self.log()}")
            time.sleep(0.1)
        return self.log()

    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""
