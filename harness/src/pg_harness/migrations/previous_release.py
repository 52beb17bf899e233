"""The previous release against the new schema: its own tests, its own code, today's head.

During a rolling deploy the release before this one keeps serving while the migrations
of this one run: a revision that drops or renames what that release reads (a contract
step shipped with its expand step) breaks every instance not yet replaced. This check
exports that release from git (`git archive`, nothing in the work tree changes), and runs
its own test suite, with its own code, against databases cloned from a template this run
built with the current migrations (handed over with PG_HARNESS_TEMPLATE).

Which release: `PREVIOUS_RELEASE` in the environment, else `previous-release` in
`[tool.pg_harness]`, else the newest tag before HEAD, else the merge-base with the main
branch. A shallow clone, or a history with no earlier release, is skipped with the reason.
Its test run's options: `previous-release-pytest-args` (by default the tests not marked
slow, without the migration checks, which test that release's own history).

The release runs with its own packages: the `src` folders of its uv workspace members (its
pg_runtime) come first on its PYTHONPATH, so it runs as it shipped, not on this head's
runtime (whose new settings, say, it knows nothing of). All but the harness: this run's
harness serves the nested run this head's template and the run's roles.
"""

import io
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pg_harness.migrations.checks import MigrationCheckError, revisions
from pg_harness.project import project
from pg_harness.server import GIVEN_TEMPLATE, RunDatabases

ENV = "PREVIOUS_RELEASE"
# Bounds a hang of the release's suite; times nothing.
RUN_TIMEOUT = 1800
DEFAULT_PYTEST_ARGS = ["-m", "not slow", "--ignore=tests/migrations", "-n", "2"]
# What the nested run must not inherit from this one: it is a run of its own.
_NOT_INHERITED = (
    "PYTEST_",
    "PG_HARNESS_",
    "TEST_DATABASE_URL",
    "TEST_PGBOUNCER",
    "COV_",
    "COVERAGE_",
)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)


def _out(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode().strip()


def previous_release(root: Path) -> tuple[str | None, str]:
    """The earlier release's git ref, or None and why there is none."""
    if _git(root, "rev-parse", "--is-inside-work-tree").returncode != 0:
        return None, f"{root} is not a git checkout"
    if _out(_git(root, "rev-parse", "--is-shallow-repository")) == "true":
        return None, "a shallow clone has no earlier release: `git fetch --unshallow --tags`"
    named = os.environ.get(ENV) or project().previous_release
    if named:
        if _git(root, "rev-parse", "--verify", "--quiet", f"{named}^{{commit}}").returncode:
            raise MigrationCheckError(
                f"the previous release {named!r} is no commit of this repository"
            )
        return named, f"named by {ENV} or [tool.pg_harness] previous-release"
    tag = _git(root, "describe", "--tags", "--abbrev=0", "HEAD^")
    if tag.returncode == 0:
        return _out(tag), "the newest tag before HEAD"
    head = _out(_git(root, "rev-parse", "HEAD"))
    for main in ("origin/HEAD", "origin/main", "main", "origin/master", "master"):
        base = _git(root, "merge-base", "HEAD", main)
        if base.returncode == 0:
            if _out(base) == head:
                return None, f"no tag, and HEAD is on {main}: no earlier release to run"
            return _out(base), f"the merge-base with {main}"
    return None, "no tag and no main branch: no earlier release to run"


def export(root: Path, ref: str, destination: Path) -> Path:
    """The release's files at `destination`, from `git archive`."""
    archive = _git(root, "archive", "--format=tar", ref)
    if archive.returncode:
        raise MigrationCheckError(f"git archive {ref} failed: {archive.stderr.decode()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def revisions_since(release: Path) -> list[str]:
    """The current revisions that the release does not have, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(release / "alembic"))
    try:
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    except Exception:  # a release from before its first revision
        known = set()
    return [
        f"{script.revision} ({script.doc})"
        for script in revisions()
        if script.revision not in known
    ]


def own_packages(release: Path) -> list[Path]:
    """The `src` folders of the release's uv workspace members, but the harness's."""
    pyproject = tomllib.loads((release / "pyproject.toml").read_text())
    members = pyproject.get("tool", {}).get("uv", {}).get("workspace", {}).get("members", [])
    harness = __name__.partition(".")[0]
    return [
        member / "src"
        for pattern in members
        for member in sorted(release.glob(pattern))
        if (member / "src").is_dir() and not (member / "src" / harness).exists()
    ]


def release_environment(release: Path, databases: RunDatabases) -> dict[str, str]:
    """The environment the release's tests run in: a run of their own on this run's
    server and template, the release's own packages imported before this head's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_NOT_INHERITED)}
    env |= {
        "TEST_DATABASE_URL": databases.admin_url.render_as_string(hide_password=False),
        GIVEN_TEMPLATE: databases.template,
    }
    path = [str(folder) for folder in own_packages(release)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def run_release_tests(release: Path, databases: RunDatabases) -> subprocess.CompletedProcess[str]:
    env = release_environment(release, databases)
    arguments = project().previous_release_pytest_args or DEFAULT_PYTEST_ARGS
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments],
        cwd=release,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=RUN_TIMEOUT,
    )


def check_previous_release(databases: RunDatabases, workspace: Path) -> None:
    """Runs the previous release's tests on the current head's schema; skips the test
    calling it where there is no previous release, and raises MigrationCheckError with the
    failing tests and the new revisions where that release fails."""
    root = project().root
    ref, why = previous_release(root)
    if ref is None:
        pytest.skip(why)
    release = export(root, ref, workspace / "previous-release")
    done = run_release_tests(release, databases)
    output = done.stdout + done.stderr
    if done.returncode == pytest.ExitCode.OK:
        return
    if done.returncode == pytest.ExitCode.NO_TESTS_COLLECTED:
        pytest.skip(f"the previous release ({ref}) has no test that its options select")
    if done.returncode != pytest.ExitCode.TESTS_FAILED:
        # Not its tests failing: its suite did not run (a usage or collection error, or an
        # interruption), which says nothing of the schema.
        raise MigrationCheckError(
            f"the previous release's ({ref}) tests could not run (pytest exit "
            f"{done.returncode}):\n{output[-6000:]}"
        )
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M) or ["(see its output below)"]
    since = revisions_since(release) or ["none"]
    raise MigrationCheckError(
        f"the previous release ({ref}, {why}) fails against the schema of this head: "
        "a revision since then removes or changes what it still uses; ship that contract "
        "step in a later release.\n"
        f"revisions since that release: {', '.join(since)}\n"
        f"its failing tests: {', '.join(failed)}\n\n{output[-6000:]}"
    )
