"""Stops an embedded server when the process that started it ends, however it ends.

The starter holds the write end of our stdin. When it exits, is interrupted or is killed
(SIGKILL included), the pipe closes, we read EOF and stop the server. Run as
`python -m pg_harness.embedded.guard BIN_DIR DATA_DIR [--remove]`.
"""

import shutil
import signal
import sys
from pathlib import Path

from pg_harness.embedded.account import server_account


def main(bin_dir: Path, data_dir: Path, *, remove: bool) -> None:
    # Ctrl-C reaches the whole foreground group; the starter decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()
    if (data_dir / "postmaster.pid").exists():
        server_account().run(
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


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), remove="--remove" in sys.argv[3:])
