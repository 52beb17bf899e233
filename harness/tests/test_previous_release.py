"""The previous-release check: in a copy with a release tagged, it passes on a history
that keeps the schema, and fails a revision that drops a column the release still reads,
naming the revision and the release's failing tests; the release runs on its own runtime."""

import subprocess
import sys
from pathlib import Path

import anyio.to_thread
import pg_harness
import pytest
from newcomer import BIN, SUITE_TIMEOUT, Newcomer, clean_db_leaves_nothing, passed
from pg_harness.migrations.checks import head_revision
from pg_harness.migrations.previous_release import previous_release, release_environment
from pg_harness.server import RunDatabases
from template_example import needs_the_example

GIT = ["git", "-c", "user.name=Newcomer", "-c", "user.email=newcomer@example.org"]
CHECK = "tests/migrations/test_previous_release.py"
CONTRACT_TOO_EARLY = '''"""drop note body"""

import sqlalchemy as sa
from alembic import op

revision = "c0de0000dead"
down_revision = {head!r}
branch_labels = None
depends_on = None
DDL_REVIEW_ACCEPTS = {{"breaks-running-release": "the mistake this test makes on purpose"}}


def upgrade() -> None:
    op.drop_column("note", "body")


def downgrade() -> None:
    op.add_column("note", sa.Column("body", sa.Text(), server_default="", nullable=False))
'''


def commit(newcomer: Newcomer, message: str) -> None:
    newcomer.succeed(*GIT, "add", "-A")
    newcomer.succeed(*GIT, "commit", "-q", "-m", message)


def release_then_contract_too_early(newcomer: Newcomer) -> None:
    newcomer.succeed("git", "init", "-q", "-b", "main")
    commit(newcomer, "release 1")
    newcomer.succeed("git", "tag", "v1")
    newcomer.write("CHANGES.md", "release 2: nothing that touches the schema yet\n")
    commit(newcomer, "release 2 begins")

    # -m "": the check is marked slow, which a bare pytest leaves out.
    output = newcomer.succeed(str(BIN / "pytest"), "-rA", "-m", "", CHECK, timeout=SUITE_TIMEOUT)
    assert passed(output, "test_previous_release.py::test_the_previous_release_runs_on_this_schema")

    head = head_revision().revision
    newcomer.write(
        "alembic/versions/2099_01_01_0000-c0de0000dead_drop_note_body.py",
        CONTRACT_TOO_EARLY.format(head=head),
    )
    commit(newcomer, "drop note.body in the release that stops reading it")
    failure = newcomer.fail(str(BIN / "pytest"), "-m", "", CHECK)
    assert "the previous release (v1, the newest tag before HEAD) fails" in failure, failure
    assert "revisions since that release: c0de0000dead (drop note body)" in failure, failure
    assert "its failing tests: tests/api/test_notes.py::" in failure, failure


@pytest.mark.slow
@needs_the_example
async def test_the_check_catches_a_column_dropped_while_the_previous_release_reads_it(
    newcomer: Newcomer, run_databases: RunDatabases
) -> None:
    await anyio.to_thread.run_sync(release_then_contract_too_early, newcomer)

    await clean_db_leaves_nothing(newcomer, run_databases.admin_url)


def git_history(folder: Path, commits: int) -> Path:
    folder.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=folder, check=True)
    for number in range(commits):
        (folder / "file.txt").write_text(str(number))
        subprocess.run([*GIT, "add", "-A"], cwd=folder, check=True)
        subprocess.run([*GIT, "commit", "-q", "-m", f"{number}"], cwd=folder, check=True)
    return folder


def test_without_an_earlier_release_the_check_says_why(tmp_path: Path) -> None:
    history = git_history(tmp_path / "history", commits=3)
    assert previous_release(history) == (
        None,
        "no tag, and HEAD is on main: no earlier release to run",
    )

    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{history}", str(shallow)], check=True
    )
    ref, why = previous_release(shallow)
    assert ref is None
    assert why.startswith("a shallow clone")

    subprocess.run(["git", "tag", "v1", "HEAD~1"], cwd=history, check=True)
    assert previous_release(history) == ("v1", "the newest tag before HEAD")
    subprocess.run(["git", "switch", "-q", "-c", "feature", "HEAD~2"], cwd=history, check=True)
    (history / "file.txt").write_text("a branch")
    subprocess.run([*GIT, "commit", "-q", "-am", "on a branch"], cwd=history, check=True)
    ref, why = previous_release(history)
    assert why == "the merge-base with main"
    assert (
        ref
        == subprocess.run(
            ["git", "rev-parse", "main~2"], cwd=history, capture_output=True, text=True, check=True
        ).stdout.strip()
    )


def test_the_release_imports_its_own_runtime_and_this_runs_harness(
    tmp_path: Path, run_databases: RunDatabases
) -> None:
    release = tmp_path / "release"
    for package in ("runtime/src/pg_runtime", "harness/src/pg_harness"):
        (release / package).mkdir(parents=True)
        (release / package / "__init__.py").write_text("")
    members = '[tool.uv.workspace]\nmembers = ["harness", "runtime"]\n'
    (release / "pyproject.toml").write_text(members)

    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pg_harness, pg_runtime; print(pg_runtime.__file__, pg_harness.__file__)",
        ],
        cwd=release,
        env=release_environment(release, run_databases),
        capture_output=True,
        text=True,
        check=True,
    )

    runtime, harness = imported.stdout.split()
    # As the release shipped: its pg_runtime, not this head's.
    assert Path(runtime) == release / "runtime/src/pg_runtime/__init__.py"
    # The harness is this run's: it hands the release this head's template and roles.
    assert Path(harness) == Path(pg_harness.__file__)
