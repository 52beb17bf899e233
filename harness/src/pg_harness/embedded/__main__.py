"""`python -m pg_harness.embedded COMMAND...`: run COMMAND with DATABASE_URL set.

If the project's settings name a database (`database-url` in `[tool.pg_harness]`, else
DATABASE_URL in the environment), COMMAND runs as it is. Otherwise the embedded development
server is started for it (or reused, if `make run` already runs it) and, when this process
started it, stopped afterwards, so nothing is left behind. `make migrate`, `make revision`
and `make run` go through here.

COMMAND is found, and finds its own tools, with the interpreter's bin folder first on PATH
(tools.py), so the environment need not be activated. It stops when its starter goes away
(starter.py), or when Ctrl-C or SIGTERM reaches it.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from types import FrameType

from pg_harness.embedded.dev import dev_data_dir, dev_database
from pg_harness.embedded.dev_roles import dev_role_urls
from pg_harness.embedded.starter import watch_starter
from pg_harness.embedded.tools import interpreter_bin, with_interpreter_tools
from pg_harness.project import project


def main(command: list[str]) -> int:
    if not command:
        sys.exit("usage: python -m pg_harness.embedded COMMAND [ARG...]")
    env = with_interpreter_tools(os.environ)
    # Looked up before a server starts for it; not found, said in a line, as a shell says it.
    program = shutil.which(command[0], path=env["PATH"])
    if program is None:
        where = f"neither on PATH nor in {interpreter_bin()}"
        print(f"error: {command[0]}: command not found ({where})", file=sys.stderr)
        return 127
    try:
        configured = project().configured_database_url() is not None
    except ValueError as exc:  # the project's settings are invalid: say why, no traceback
        sys.exit(f"error: {exc}")
    if configured:
        return run(command, program, env)
    with dev_database() as url:
        # As production runs: migrations as the owner, requests as the app's roles.
        env |= asyncio.run(dev_role_urls(url, dev_data_dir()))
        return run(command, program, env)


def run(command: list[str], program: str, env: dict[str, str]) -> int:
    """Run `command` from the file `program` and wait for it, passing on what stops it."""
    got: set[int] = set()  # what the child has had: Ctrl-C with us, or SIGTERM from us

    def on_signal(signo: int, _frame: FrameType | None) -> None:
        got.add(signo)
        if signo == signal.SIGTERM:  # sent to us alone, as make and process managers do
            child.send_signal(signo)

    def on_starter_gone(signo: signal.Signals) -> None:
        if signo not in got:
            got.add(signo)
            child.send_signal(signo)

    # Ctrl-C reaches the child too (same process group): we wait for it to shut down, then
    # stop the server on leaving `with`. Handled rather than ignored, and before the child
    # exists: handlers reset on exec, so the child keeps Ctrl-C (SIG_IGN would be inherited).
    signal.signal(signal.SIGINT, on_signal)
    try:
        # argv[0] as given (what `ps` and the command's messages show), run from `program`.
        child = subprocess.Popen(command, executable=program, env=env)
    except OSError as exc:  # found, but not runnable (no interpreter line, say)
        print(f"error: {command[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    signal.signal(signal.SIGTERM, on_signal)
    watch_starter(on_starter_gone)
    status = child.wait()
    # Ended by signal N: 128 + N, as a shell says it (make would print 256 - N otherwise).
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
