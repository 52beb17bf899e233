"""For tests of processes and servers: a free port, a folder the server's account reaches,
what /proc says of a process, waiting, and a Debian package the test needs."""

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def require_installed(binary: str | None, required: str, hint: str) -> None:
    """Skip the calling test where a Debian package's `binary` is missing (None), with the
    install `hint`; fail instead where the environment variable `required` is set (by
    .ci/run, which installs it)."""
    if binary is not None:
        return
    import pytest  # here: the embedded server's launcher imports this module too

    if os.environ.get(required):
        pytest.fail(hint)
    pytest.skip(hint)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def reachable_dir(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A temporary folder every account may enter (pytest's tmp_path is 0700 under root,
    and the embedded server runs as its own account there), in `parent` (default: the system's
    temporary folder); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    try:
        yield path
    finally:
        # rm, not shutil.rmtree: the server's account owns files in it.
        subprocess.run(["rm", "-rf", str(path)], check=False)


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from its third field on (state, ppid, pgrp, session, ...), or None
    for a process that is gone. The command name before them may hold spaces and parens."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or hidden from us (/proc mounted with hidepid)
        return None
    return stat[stat.rindex(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """The live processes (zombies left out) of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], object], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
