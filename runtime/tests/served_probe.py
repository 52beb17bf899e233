"""The probe app served by a real `python -m probe` process (pg_harness.served)."""

import sys
from pathlib import Path

from pg_harness.served import Served

# The folder that holds the probe package: the served process and its workers import it.
TESTS = Path(__file__).resolve().parent
PROBE_COMMAND = [sys.executable, "-m", "probe"]


def probe_env(env: dict[str, str]) -> dict[str, str]:
    """`env`, and a PYTHONPATH that finds the probe package."""
    return {"PYTHONPATH": str(TESTS), **env}


def served_probe(env: dict[str, str]) -> Served:
    """`python -m probe` with the settings in `env`, on a free port (enter it to start)."""
    return Served(probe_env(env), command=PROBE_COMMAND)


def peak_memory_kib(pid: int) -> int:
    """The process's peak resident memory so far (Linux's VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")
