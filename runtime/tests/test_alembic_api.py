"""Alembic's private API that pg_runtime.migrations walks revisions with, as it relies on it.

`Migrations.upgrade()` and `.downgrade()` hand `ScriptDirectory._upgrade_revs` and
`_downgrade_revs` to an `EnvironmentContext`, so that revision files are read once per
Config instead of once per command (alembic.command reads them again each time). Both are
private: runtime/pyproject.toml bounds alembic below the next minor release, and this test
says what broke when a new one moves or changes them, on a script directory of its own.
"""

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import alembic
import pytest
from alembic.script import ScriptDirectory

REVISIONS = ["a1", "b2", "c3"]  # in order: a1 <- b2 <- c3

WHAT_BROKE = (
    f"alembic {alembic.__version__}: ScriptDirectory.{{name}} {{problem}}; "
    "pg_runtime.migrations (_upgrade, _downgrade) calls it as "
    "{name}(destination, current_heads) and needs the steps to run, in order: "
    "follow Alembic's change there (alembic.command.upgrade/downgrade show the new way), "
    "or keep the bound on alembic in runtime/pyproject.toml"
)


@pytest.fixture
def script(tmp_path: Path) -> ScriptDirectory:
    """A script directory of three revisions in a line."""
    versions = tmp_path / "versions"
    versions.mkdir()
    down: str | None = None
    for revision in REVISIONS:
        (versions / f"{revision}_step.py").write_text(
            f"revision = {revision!r}\ndown_revision = {down!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n    pass\n\n\n"
            "def downgrade() -> None:\n    pass\n"
        )
        down = revision
    return ScriptDirectory(str(tmp_path))


def private(script: ScriptDirectory, name: str) -> Callable[[str, Any], list[Any]]:
    method = getattr(script, name, None)
    assert callable(method), WHAT_BROKE.format(name=name, problem="is gone")
    parameters = list(inspect.signature(method).parameters)
    assert len(parameters) == 2, WHAT_BROKE.format(
        name=name, problem=f"now takes ({', '.join(parameters)})"
    )
    return method  # type: ignore[no-any-return]


def steps(name: str, found: list[Any], upgrade: bool) -> list[str]:
    """The revisions of `found`'s steps, checked to be steps in the direction asked."""
    for step in found:
        assert getattr(step, "is_upgrade", None) is upgrade, WHAT_BROKE.format(
            name=name, problem=f"returned {step!r}, not an {'up' if upgrade else 'down'}grade step"
        )
    return [step.revision.revision for step in found]


@pytest.mark.parametrize(
    ("destination", "current", "expected"),
    [("head", (), REVISIONS), ("head", ("a1",), ["b2", "c3"]), ("b2", ("a1",), ["b2"])],
    ids=["from-nothing", "from-a1", "to-b2"],
)
def test_upgrade_revs_gives_the_steps_to_run_oldest_first(
    script: ScriptDirectory, destination: str, current: tuple[str, ...], expected: list[str]
) -> None:
    upgrade_revs = private(script, "_upgrade_revs")

    found = steps("_upgrade_revs", upgrade_revs(destination, current), upgrade=True)

    assert found == expected, WHAT_BROKE.format(
        name="_upgrade_revs",
        problem=f"gave {found} for {destination} from {current}, not {expected}",
    )


@pytest.mark.parametrize(
    ("destination", "current", "expected"),
    [("base", ("c3",), ["c3", "b2", "a1"]), ("a1", ("c3",), ["c3", "b2"]), ("-1", ("b2",), ["b2"])],
    ids=["to-base", "to-a1", "one-step"],
)
def test_downgrade_revs_gives_the_steps_to_run_newest_first(
    script: ScriptDirectory, destination: str, current: tuple[str, ...], expected: list[str]
) -> None:
    downgrade_revs = private(script, "_downgrade_revs")

    found = steps("_downgrade_revs", downgrade_revs(destination, current), upgrade=False)

    assert found == expected, WHAT_BROKE.format(
        name="_downgrade_revs",
        problem=f"gave {found} for {destination} from {current}, not {expected}",
    )
