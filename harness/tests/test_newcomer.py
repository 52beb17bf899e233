"""The extension promise: a newcomer follows the README, and the harness covers their code.

In a copy of the project (reusing this virtual environment, without this test), do what
the README's "Add a model" says: a model related to an existing one, `make revision`,
`make migrate`, a router and its test, `make test`. The new revision must show up in the
stairway and no-trace checks, the drift check must pass, and the new tests run isolated
like the others, all without a harness edit. Then two mistakes, each of which must fail
the copied suite with a message naming the revision: a downgrade() that undoes nothing,
and a model column with no revision.

The copy uses what this run uses: the server of TEST_DATABASE_URL if set, else embedded
servers of its own (in the copy, so `nobody` can reach them when we run as root).
"""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import newcomer_files
import pytest
from pg_harness.databases import (
    create_database,
    database_name,
    database_names,
    kept_templates_prefix,
)
from pg_harness.processes import reachable_dir
from pg_harness.project import project
from pg_harness.server import RunDatabases
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow

# Bounds a hang, times nothing: the copied suite runs in full on a shared machine.
SUITE_TIMEOUT = 1800
COMMAND_TIMEOUT = 300
_NOT_COPIED = shutil.ignore_patterns(".git", ".venv", ".env", ".pgdata*", "__pycache__", ".*_cache")


@pytest.fixture
def newcomer_copy() -> Iterator[Path]:
    """A copy of the project that the embedded server's account can reach."""
    with reachable_dir("newcomer-") as parent:
        copy = parent / "service"
        shutil.copytree(project().root, copy, ignore=_NOT_COPIED)
        yield copy


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


@pytest.fixture
async def newcomer(newcomer_copy: Path, run_databases: RunDatabases, worker_name: str) -> Newcomer:
    if not os.environ.get("TEST_DATABASE_URL"):
        return Newcomer(newcomer_copy, test_server=None, dev_server=None)
    # `make run`'s database on the given server: a database of this run's, dropped with it.
    name = database_name(run_databases.run, f"{worker_name}_newcomer_dev")
    dev = await create_database(run_databases.admin_url, name)
    return Newcomer(newcomer_copy, test_server=run_databases.admin_url, dev_server=dev)


def add_tag_model(newcomer: Newcomer) -> Path:
    """README steps 1 to 3: the model, its reviewed revision, migrated; returns the revision."""
    # Autogenerate compares the models with a database at the head revision: the README's
    # newcomer has run `make run` (which migrates) or `make migrate` before.
    newcomer.succeed("make", "migrate")
    newcomer.write("orm/models/tag.py", newcomer_files.MODEL)
    newcomer.edit(
        "orm/models/__init__.py",
        "from orm.models.user import Role, User\n",
        "from orm.models.tag import Tag\nfrom orm.models.user import Role, User\n",
    )
    newcomer.edit("orm/models/__init__.py", '"Role", "User"]', '"Role", "Tag", "User"]')

    newcomer.succeed("make", "revision", "m=add tag")
    [revision] = (newcomer.project / "alembic" / "versions").glob("*_add_tag.py")
    # Review: what autogenerate wrote creates the table and its downgrade drops it.
    source = revision.read_text()
    assert 'op.create_table(\n        "tag",' in source, source
    assert 'op.drop_table("tag")' in source, source
    assert "# ###" not in source, "generator chatter left in the revision"
    # As generated, the revision passes the project's linters.
    newcomer.succeed(str(BIN / "ruff"), "check", str(revision))
    newcomer.succeed(str(BIN / "ruff"), "format", "--check", str(revision))
    newcomer.succeed(str(BIN / "mypy"), "--strict", str(revision))

    newcomer.succeed("make", "migrate")
    return revision


def add_tag_router_and_tests(newcomer: Newcomer) -> None:
    """README steps 4 and 5."""
    newcomer.write("api/schemas/tags.py", newcomer_files.SCHEMAS)
    newcomer.write("api/routers/tags.py", newcomer_files.ROUTER)
    newcomer.edit("app/factory.py", "health, notes, users", "health, notes, tags, users")
    newcomer.edit(
        "app/factory.py",
        "    app.include_router(notes.router)\n",
        "    app.include_router(notes.router)\n    app.include_router(tags.router)\n",
    )
    newcomer.write("tests/api/test_tags.py", newcomer_files.TESTS)


def revision_id(revision: Path) -> str:
    found = re.search(r'^revision: str = "([0-9a-f]+)"', revision.read_text(), re.M)
    assert found is not None, revision.read_text()
    return found[1]


def passed(output: str, test: str) -> bool:
    return re.search(rf"^PASSED \S*{re.escape(test)}", output, re.M) is not None


async def test_the_harness_covers_a_newcomers_model_router_and_revision(
    newcomer: Newcomer, run_databases: RunDatabases
) -> None:
    # The commands block: a thread of their own, off this worker's event loop.
    await anyio.to_thread.run_sync(follow_the_readme_then_make_mistakes, newcomer)

    # What the copy's runs kept: `make clean-db` removes it.
    await anyio.to_thread.run_sync(newcomer.succeed, "make", "clean-db")
    kept = await database_names(run_databases.admin_url, kept_templates_prefix(newcomer.project))
    assert not kept, "make clean-db left a kept template of the copy"
    assert not (newcomer.project / ".pgdata-test").exists()


def follow_the_readme_then_make_mistakes(newcomer: Newcomer) -> None:
    revision = add_tag_model(newcomer)
    new = revision_id(revision)
    add_tag_router_and_tests(newcomer)

    # README step 6; -rA lists every passed test, to see what the harness picked up. Less
    # the tests marked slow (real servers, processes, PgBouncer): they do not touch the
    # newcomer's code, this run has just run them, and nested inside one of its workers
    # on a loaded machine they only added minutes and timing noise.
    newcomer.env["PYTEST_ADDOPTS"] = "-rA -m 'not slow'"
    output = newcomer.succeed("make", "test", timeout=SUITE_TIMEOUT)
    assert passed(
        output,
        f"test_stairway.py::test_revision_upgrades_downgrades_without_a_trace_and_upgrades_again[{new}]",
    ), output
    assert passed(output, "test_drift.py::test_models_match_the_migrated_schema"), output
    assert passed(output, "test_history.py::"), output
    assert passed(output, f"test_offline.py::test_revision_can_be_written_as_sql[{new}]"), output
    for attempt in range(4):
        assert passed(output, f"test_tags.py::test_each_test_starts_with_no_tags[{attempt}]"), (
            output
        )

    # Mistake 1: a downgrade that undoes nothing.
    source = revision.read_text()
    body = re.search(r"def downgrade\(\) -> None:\n((?:    .*\n|\n)+)", source)
    assert body is not None, source
    revision.write_text(source.replace(body[1], "    pass\n"))
    failure = newcomer.fail(str(BIN / "pytest"), "-n", "auto", "tests/migrations")
    assert f"revision {new} ('add tag'" in failure, failure
    assert "does not undo the upgrade" in failure, failure
    assert "table tag: left behind" in failure, failure
    revision.write_text(source)

    # Mistake 2: a column added to the model without a revision.
    newcomer.edit(
        "orm/models/tag.py",
        "    label: Mapped[str] = mapped_column(String(50))\n",
        "    label: Mapped[str] = mapped_column(String(50))\n" + newcomer_files.UNMIGRATED_COLUMN,
    )
    failure = newcomer.fail(str(BIN / "pytest"), "-n", "auto", "tests/migrations")
    assert f"the models and the migrations up to revision {new} ('add tag'" in failure, failure
    assert "'add_column', None, 'tag', Column('colour'" in failure, failure
