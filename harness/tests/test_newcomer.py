"""The extension promise: a newcomer follows the README, and the harness covers their code.

In a copy of the project (reusing this virtual environment, without this test), do what
the README's "Add a model" says: a model related to an existing one, `make revision`,
`make migrate`, a router and its test, `make test`. The new revision must show up in the
stairway and no-trace checks, the drift check must pass, and the new tests run isolated
like the others, all without a harness edit. Then three mistakes, each of which must fail
the copied suite with a message naming the revision: a downgrade() that undoes nothing,
a model column with no revision, and an index on an existing table as autogenerate
writes it (the DDL review asks for CONCURRENTLY).

The copy uses what this run uses: the server of TEST_DATABASE_URL if set, else embedded
servers of its own (in the copy, so `nobody` can reach them when we run as root).
"""

import re
from pathlib import Path

import anyio
import anyio.to_thread
import newcomer_files
import pytest
from newcomer import (
    BIN,
    SUITE_TIMEOUT,
    Newcomer,
    clean_db_leaves_nothing,
    passed,
    revision_id,
)
from pg_harness.server import RunDatabases
from template_example import needs_the_users

pytestmark = [pytest.mark.slow, needs_the_users]


def add_project_model(newcomer: Newcomer) -> Path:
    """README steps 1 to 3: the model, its reviewed revision, migrated; returns the revision."""
    # Autogenerate compares the models with a database at the head revision: the README's
    # newcomer has run `make run` (which migrates) or `make migrate` before.
    newcomer.succeed("make", "migrate")
    newcomer.write("orm/models/project.py", newcomer_files.MODEL)
    add_to_list(newcomer, "orm/models/__init__.py", "orm.models.project", "Project")

    newcomer.succeed("make", "revision", "m=add project")
    [revision] = (newcomer.project / "alembic" / "versions").glob("*_add_project.py")
    # Review: what autogenerate wrote creates the table and its downgrade drops it.
    source = revision.read_text()
    assert 'op.create_table(\n        "project",' in source, source
    assert 'op.drop_table("project")' in source, source
    assert "# ###" not in source, "generator chatter left in the revision"
    # As generated, the revision passes the project's linters.
    newcomer.succeed(str(BIN / "ruff"), "check", str(revision))
    newcomer.succeed(str(BIN / "ruff"), "format", "--check", str(revision))
    newcomer.succeed(str(BIN / "mypy"), "--strict", str(revision))

    newcomer.succeed("make", "migrate")
    return revision


def add_to_list(newcomer: Newcomer, path: str, module: str, name: str) -> None:
    """Import `name` from `module` in `path` and list it (`__all__`, `ROUTERS`), then let
    ruff sort what was added, as an editor does on save."""
    file = newcomer.project / path
    source = file.read_text()
    if name[0].isupper():  # a model, in orm/models/__init__.py
        imported, entry, listing = f"from {module} import {name}", f'"{name}"', "__all__ = ["
    else:  # a router, in api/routers/__init__.py
        package, _, child = module.rpartition(".")
        imported, entry = f"from {package} import {child}", f"{child}.router"
        listing = "ROUTERS: list[APIRouter] = ["
    docstring, end, rest = source.partition('"""\n\n')
    source = f"{docstring}{end}{imported}\n{rest}"
    if listing in source:
        source = source.replace(listing, f"{listing}{entry}, ", 1).replace(", ]", "]")
    else:
        source += f"\n{listing}{entry}]\n"
    file.write_text(source)
    newcomer.succeed(str(BIN / "ruff"), "check", "--fix", "--unsafe-fixes", "-q", str(file))
    newcomer.succeed(str(BIN / "ruff"), "format", "-q", str(file))


def add_project_router_and_tests(newcomer: Newcomer) -> None:
    """README steps 4 and 5."""
    newcomer.write("api/schemas/projects.py", newcomer_files.SCHEMAS)
    newcomer.write("api/routers/projects.py", newcomer_files.ROUTER)
    add_to_list(newcomer, "api/routers/__init__.py", "api.routers.projects", "projects")
    newcomer.write("tests/api/test_projects.py", newcomer_files.TESTS)


async def test_the_harness_covers_a_newcomers_model_router_and_revision(
    newcomer: Newcomer, run_databases: RunDatabases
) -> None:
    # The commands block: a thread of their own, off this worker's event loop.
    await anyio.to_thread.run_sync(follow_the_readme_then_make_mistakes, newcomer)

    await clean_db_leaves_nothing(newcomer, run_databases.admin_url)


def follow_the_readme_then_make_mistakes(newcomer: Newcomer) -> None:
    revision = add_project_model(newcomer)
    new = revision_id(revision)
    add_project_router_and_tests(newcomer)

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
        assert passed(
            output, f"test_projects.py::test_each_test_starts_with_no_projects[{attempt}]"
        ), output

    # Mistake 1: a downgrade that undoes nothing.
    source = revision.read_text()
    body = re.search(r"def downgrade\(\) -> None:\n((?:    .*\n|\n)+)", source)
    assert body is not None, source
    revision.write_text(source.replace(body[1], "    pass\n"))
    failure = newcomer.fail(str(BIN / "pytest"), "-n", "auto", "tests/migrations")
    assert f"revision {new} ('add project'" in failure, failure
    assert "does not undo the upgrade" in failure, failure
    assert "table project: left behind" in failure, failure
    revision.write_text(source)

    # Mistake 2: a column added to the model without a revision.
    newcomer.edit(
        "orm/models/project.py",
        newcomer_files.USER_NAME,
        newcomer_files.USER_NAME + newcomer_files.UNMIGRATED_COLUMN,
    )
    failure = newcomer.fail(str(BIN / "pytest"), "-n", "auto", "tests/migrations")
    assert f"the models and the migrations up to revision {new} ('add project'" in failure, failure
    assert "'add_column', None, 'project', Column('colour'" in failure, failure

    # Mistake 3: an index on a table production already fills, as autogenerate writes it.
    newcomer.edit(
        "orm/models/project.py",
        newcomer_files.USER_NAME + newcomer_files.UNMIGRATED_COLUMN,
        newcomer_files.USER_NAME,
    )
    newcomer.edit("orm/models/user.py", newcomer_files.USER_NAME, newcomer_files.USER_NAME_INDEXED)
    # `make revision` writes it, then its checks fail at once, saying what to write.
    failure = newcomer.succeed("make", "revision", "m=index user name")
    [indexed] = (newcomer.project / "alembic" / "versions").glob("*_index_user_name.py")
    assert "op.create_index(" in indexed.read_text(), indexed.read_text()
    assert "the new revision fails the checks above" in failure, failure
    failure = newcomer.fail(
        str(BIN / "pytest"), "-n", "auto", "tests/migrations/test_ddl_review.py"
    )
    assert f"revision {revision_id(indexed)} ('index user name'" in failure, failure
    assert (
        "[create-index-blocks-writes] CREATE INDEX ix_user_account_name ON user_account" in failure
    ), failure
    assert "CONCURRENTLY" in failure, failure
