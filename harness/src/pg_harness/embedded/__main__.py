"""`python -m pg_harness.embedded COMMAND...`: run COMMAND with DATABASE_URL set.

If the project's settings name a database (`database-url` in `[tool.pg_harness]`, else
DATABASE_URL in the environment), COMMAND runs as it is. Otherwise the embedded development
server is started for it (or reused, if `make run` already runs it) and, when this process
started it, stopped afterwards, so nothing is left behind. `make migrate`, `make revision`
and `make run` go through here.
"""

import os
import signal
import subprocess
import sys

from pg_harness.embedded.dev import dev_database
from pg_harness.project import project


def main(command: list[str]) -> int:
    if not command:
        sys.exit("usage: python -m pg_harness.embedded COMMAND [ARG...]")
    try:
        configured = project().configured_database_url() is not None
    except ValueError as exc:  # the project's settings are invalid: say why, no traceback
        sys.exit(f"error: {exc}")
    if configured:
        return subprocess.call(command)
    with dev_database() as url:
        env = os.environ | {"DATABASE_URL": url.render_as_string(hide_password=False)}
        # Ctrl-C reaches the child too (same process group): we wait for it to shut down,
        # then stop the server on leaving `with`. A do-nothing handler rather than SIG_IGN,
        # and set before the child exists: handlers reset on exec, so the child keeps Ctrl-C.
        signal.signal(signal.SIGINT, lambda _signo, _frame: None)
        child = subprocess.Popen(command, env=env)
        signal.signal(signal.SIGTERM, lambda _signo, _frame: child.terminate())
        return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
