"""The `alembic` command line on the probe's env.py (`run_env`), run as a user runs it,
against this run's server."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from probe.migrations import PROBE_ROOT
from probe.models import Base
from sqlalchemy.engine import URL

# Real processes and servers: a proof of the runtime's claims, run by `make check-runtime`.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# The lint settings a generated revision must pass: the repository's, which the probe's
# code follows too.
LINT_SETTINGS = next(
    settings
    for settings in (folder / "pyproject.toml" for folder in PROBE_ROOT.parents)
    if settings.is_file() and "[tool.ruff" in settings.read_text()
)


async def run(
    *args: str | Path, cwd: Path = PROBE_ROOT, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Exit status and combined output of a command."""
    with anyio.fail_after(180):
        done = await anyio.run_process(
            [*args],
            cwd=cwd,
            env=env,
            check=False,
            stderr=subprocess.STDOUT,
        )
    return done.returncode, done.stdout.decode()


async def alembic(
    *args: str, database_url: URL | None, cwd: Path = PROBE_ROOT, **settings: URL
) -> tuple[int, str]:
    """`alembic *args` on `database_url`; `settings`: more URLs, by setting name
    (database_read_url=...)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    for name, url in settings.items():
        env[name.upper()] = url.render_as_string(hide_password=False)
    return await run(BIN / "alembic", *args, cwd=cwd, env=env)


@pytest.mark.xdist_group("cli")
async def test_upgrade_check_and_downgrade_from_the_command_line(empty_database: URL) -> None:
    status, output = await alembic("upgrade", "head", database_url=empty_database)
    assert status == 0, output
    assert "Running upgrade" in output

    status, output = await alembic("check", database_url=empty_database)
    assert status == 0, output
    assert "No new upgrade operations detected" in output

    status, output = await alembic("downgrade", "base", database_url=empty_database)
    assert status == 0, output
    assert "Running downgrade" in output
    status, output = await alembic("current", database_url=empty_database)
    assert status == 0, output
    assert "(head)" not in output


@pytest.mark.xdist_group("cli")
async def test_downgrade_one_step_from_the_command_line(empty_database: URL) -> None:
    status, output = await alembic("upgrade", "head", database_url=empty_database)
    assert status == 0, output

    status, output = await alembic("downgrade", "-1", database_url=empty_database)

    assert status == 0, output
    assert "Running downgrade" in output


async def test_autogenerate_on_a_clean_tree_finds_nothing_and_writes_lint_clean_code(
    fresh_database: URL, tmp_path: Path
) -> None:
    # A copy, so the new file never lands among the revisions other tests are walking.
    project = tmp_path / "project"
    copy = project / "probe"  # its alembic.ini puts `project` on the path: the copy is imported
    shutil.copytree(PROBE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(LINT_SETTINGS, project / "pyproject.toml")

    status, output = await alembic(
        "revision",
        "--autogenerate",
        "-m",
        "nothing changed",
        database_url=fresh_database,
        cwd=copy,
    )

    assert status == 0, output
    [new] = (copy / "alembic" / "versions").glob("*_nothing_changed.py")
    code = new.read_text()
    assert "def upgrade() -> None:\n    pass" in code
    assert "def downgrade() -> None:\n    pass" in code
    assert "###" not in code  # no generator chatter
    status, output = await run(BIN / "ruff", "check", "--no-cache", new, cwd=project)
    assert status == 0, output
    status, output = await run(
        BIN / "mypy", "--strict", "--no-incremental", "--follow-imports=silent", new, cwd=project
    )
    assert status == 0, output


async def test_command_line_without_database_url_says_how_to_get_one() -> None:
    status, output = await alembic("upgrade", "head", database_url=None)

    assert status != 0
    assert "DATABASE_URL is not set" in output
    assert "Traceback" not in output


async def test_offline_mode_writes_sql_without_a_database() -> None:
    status, output = await alembic("upgrade", "head", "--sql", database_url=None)

    assert status == 0, output
    for table in Base.metadata.tables:
        assert f"CREATE TABLE {table}" in output
