"""Where the wrapper finds its command: on PATH, the running interpreter's bin folder first.

`.venv/bin/python -m pg_harness.embedded alembic current` must run the environment's
alembic without the environment being activated, and so must the command's own children
(`sh -c 'alembic upgrade head && exec python main.py'`): the bin folder goes first on the
command's PATH, as activating the environment would put it, and the command is looked up
there. A tool of the same name elsewhere on PATH would lack the project's packages.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path


def interpreter_bin() -> Path:
    # Not resolved: a venv's python is a link to the base interpreter, whose folder has
    # none of the environment's tools.
    return Path(sys.executable).parent


def with_interpreter_tools(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the interpreter's bin folder first on PATH."""
    path = env.get("PATH", os.defpath)
    folder = str(interpreter_bin())
    if path.split(os.pathsep)[0] != folder:
        path = os.pathsep.join([folder, path]) if path else folder
    return {**env, "PATH": path}
