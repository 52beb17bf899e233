"""The first hour, as the README has it: "Make it yours", then "Add a model".

In a copy: the README's "Make it yours" block as written (the service named, the example's
notes taken out, the users kept, the development database emptied), which ends with
`make check`; then the README's "Add a model" steps (harness/tests/test_newcomer.py's, a
project owned by a user), and `make check` again. Both must be green, and the harness's
checks must have picked the new revision up.
"""

import re
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from newcomer import SUITE_TIMEOUT, Newcomer, clean_db_leaves_nothing, passed, revision_id
from pg_harness.server import RunDatabases
from template_example import needs_the_example
from test_newcomer import add_project_model, add_project_router_and_tests

pytestmark = [pytest.mark.slow, needs_the_example]


def readme_block(readme: Path) -> str:
    """The shell block of the README's "Make it yours" section."""
    section = readme.read_text().split("\n## Make it yours\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```sh\n(.*?)^```$", section, re.M | re.S)
    assert found is not None, "the README's Make it yours section has no sh block"
    return found[1]


def make_it_yours(newcomer: Newcomer) -> None:
    newcomer.env["PYTEST_ADDOPTS"] = "-rA"
    block = readme_block(newcomer.project / "README.md")
    output = newcomer.succeed("bash", "-euo", "pipefail", "-c", block, timeout=SUITE_TIMEOUT)
    # The notes are gone, the users stay, and `make check` (in the block) passed on them.
    versions = newcomer.project / "alembic" / "versions"
    assert not list(versions.glob("*note*.py")), list(versions.iterdir())
    assert not (newcomer.project / "orm" / "models" / "note.py").exists()
    assert (newcomer.project / "orm" / "models" / "user.py").exists()
    assert 'NAME = "Inventory"' in (newcomer.project / "app" / "__init__.py").read_text()
    assert passed(output, "test_drift.py::test_models_match_the_migrated_schema"), output
    assert passed(output, "test_users.py::test_create_user_returns_201_and_stores_the_row"), output
    assert re.search(r"Required test coverage of \S+ reached", output), output

    # Their first model, as "Add a model" says, then `make check` again.
    revision = add_project_model(newcomer)
    add_project_router_and_tests(newcomer)
    output = newcomer.succeed("make", "check", timeout=SUITE_TIMEOUT)
    first = revision_id(revision)
    assert passed(
        output,
        "test_stairway.py::test_revision_upgrades_downgrades_without_a_trace_and_upgrades_again"
        f"[{first}]",
    ), output
    assert passed(
        output, f"test_ddl_review.py::test_revision_takes_no_lock_production_would_feel[{first}]"
    ), output
    assert passed(output, "test_projects.py::test_create_project_returns_201_and_stores_the_row"), (
        output
    )


async def test_the_readme_makes_the_template_yours_and_the_harness_follows(
    newcomer: Newcomer, run_databases: RunDatabases
) -> None:
    # The commands block: a thread of their own, off this worker's event loop.
    await anyio.to_thread.run_sync(make_it_yours, newcomer)

    await clean_db_leaves_nothing(newcomer, run_databases.admin_url)
