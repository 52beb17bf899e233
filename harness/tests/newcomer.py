"""A newcomer at work in a copy of the project: runs the README's commands there."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio.to_thread
from pg_harness.databases import database_names, kept_templates_prefix
from sqlalchemy.engine import URL
from template_example import NEWCOMER_COPY

# Bounds a hang, times nothing: the copied suite runs in full on a shared machine.
SUITE_TIMEOUT = 1800
COMMAND_TIMEOUT = 300
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", ".env", ".pgdata*", "__pycache__", ".*_cache")


# The tools beside the interpreter running this test.
BIN = Path(sys.executable).parent


class Newcomer:
    """Runs the README's commands in the copy, with the servers this run uses."""

    def __init__(self, copy: Path, test_server: URL | None, dev_server: URL | None) -> None:
        self.project = copy
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEST_"))}
        # The copy's make targets use this run's environment (the Makefile's VENV), whatever
        # its path: no install of its own.
        env["MAKEFLAGS"] = f"VENV={sys.prefix}"
        env[NEWCOMER_COPY] = "1"
        env.pop("DATABASE_URL", None)
        if test_server is not None:
            env["TEST_DATABASE_URL"] = test_server.render_as_string(hide_password=False)
        if dev_server is not None:
            env["DATABASE_URL"] = dev_server.render_as_string(hide_password=False)
        self.env = env

    def run(
        self, *command: str, timeout: int = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def succeed(self, *command: str, timeout: int = COMMAND_TIMEOUT) -> str:
        done = self.run(*command, timeout=timeout)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"`{' '.join(command)}` failed:\n{output}"
        return output

    def fail(self, *command: str) -> str:
        done = self.run(*command, timeout=SUITE_TIMEOUT)
        output = done.stdout + done.stderr
        assert done.returncode != 0, f"`{' '.join(command)}` passed:\n{output}"
        return output

    def write(self, path: str, text: str) -> None:
        (self.project / path).write_text(text)

    def edit(self, path: str, old: str, new: str) -> None:
        file = self.project / path
        text = file.read_text()
        assert old in text, f"{path} no longer has {old!r}: update newcomer_files.py"
        file.write_text(text.replace(old, new, 1))


def revision_id(revision: Path) -> str:
    found = re.search(r'^revision: str = "([0-9a-f]+)"', revision.read_text(), re.M)
    assert found is not None, revision.read_text()
    return found[1]


def passed(output: str, test: str) -> bool:
    return re.search(rf"^PASSED \S*{re.escape(test)}", output, re.M) is not None


async def clean_db_leaves_nothing(newcomer: Newcomer, admin_url: URL) -> None:
    """`make clean-db` in the copy drops what its runs kept: its template, its data folder."""
    # A command: a thread of its own, off the test's event loop.
    await anyio.to_thread.run_sync(newcomer.succeed, "make", "clean-db")
    kept = await database_names(admin_url, kept_templates_prefix(newcomer.project))
    assert not kept, "make clean-db left a kept template of the copy"
    assert not (newcomer.project / ".pgdata-test").exists()
