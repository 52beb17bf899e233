"""Cleans up after the process that started it when that process ends, however it ends:
stops an embedded server, or ends an app served for a test (pg_harness.served).

The starter holds the write end of our stdin. When it exits, is interrupted or is killed
(SIGKILL included), the pipe closes, we read EOF and clean up; `release()` closes it on
purpose. Run as `python -m pg_harness.embedded.guard server BIN_DIR DATA_DIR [--remove]`,
or `... guard group GRACE` with the group leader's pid then written to stdin, once started.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pg_harness.embedded.account import owner_of
from pg_harness.processes import group_members


def start_guard(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pg_harness.embedded.guard", *args],
        stdin=subprocess.PIPE,
        start_new_session=True,  # out of the terminal's process group: Ctrl-C is ours to handle
    )


def release(guard: subprocess.Popen[bytes]) -> None:
    """Have the guard clean up now, and wait until it has."""
    assert guard.stdin is not None
    guard.stdin.close()
    guard.wait()


def _stop_server(bin_dir: Path, data_dir: Path, *, remove: bool) -> None:
    if (data_dir / "postmaster.pid").exists():
        owner_of(data_dir).run(  # the server's account, whoever's checkout started this
            [
                str(bin_dir / "pg_ctl"),
                "stop",
                "--wait",
                "--mode",
                "fast",
                "--pgdata",
                str(data_dir),
            ],
            capture_output=True,
        )
    if remove:
        shutil.rmtree(data_dir, ignore_errors=True)


def _end_group(leader: int, grace: float) -> None:
    """SIGTERM the process group `leader` leads, as a process manager stops a service, and
    SIGKILL what is left of it after `grace` seconds."""
    _signal_group(leader, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(leader):
        if time.monotonic() > deadline:
            # By the group's id still: while a member is left, no other group can have it.
            _signal_group(leader, signal.SIGKILL)
            return
        time.sleep(0.1)


def _signal_group(leader: int, signo: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone meanwhile
        os.killpg(leader, signo)


def _guard_group(grace: float) -> None:
    line = sys.stdin.buffer.readline()
    if not line:
        return  # the starter ended before it started anything
    leader = int(line)
    # The leader's pid, and the group's id with it, is the app's until the starter reaps the
    # leader: after stopping the group, or seeing the leader end. By then the pid may name
    # another process; a pidfd names this one, and tells whether it was reaped.
    try:
        handle = os.pidfd_open(leader)
    except ProcessLookupError:
        return
    sys.stdin.buffer.read()
    try:
        signal.pidfd_send_signal(handle, 0)
    except ProcessLookupError:
        return  # reaped: stopped already, and the group's id may be another's now
    _end_group(leader, grace)


def main() -> None:
    # Ctrl-C reaches the whole foreground group; the starter decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.argv[1] == "group":
        _guard_group(float(sys.argv[2]))
        return
    sys.stdin.buffer.read()
    _stop_server(Path(sys.argv[2]), Path(sys.argv[3]), remove="--remove" in sys.argv[4:])


if __name__ == "__main__":
    main()
