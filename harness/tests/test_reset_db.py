"""`make reset-db` (`python -m pg_harness.embedded.reset`): the embedded development
database emptied, migration stamp and all; a database that DATABASE_URL names untouched."""

import os
import sys

import anyio
import pytest
from pg_harness.processes import reachable_dir
from pg_harness.project import project
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow


async def run(*command: str, **env: str) -> str:
    done = await anyio.run_process(
        [sys.executable, "-m", *command],
        cwd=project().root,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env,
        check=False,
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output
    return output


async def test_reset_db_empties_the_development_database() -> None:
    with reachable_dir("test-reset-") as parent:
        dev = {"EMBEDDED_PGDATA": str(parent / "dev")}
        await run("pg_harness.embedded", "alembic", "upgrade", "head", **dev)
        assert "(head)" in await run("pg_harness.embedded", "alembic", "current", **dev)

        said = await run("pg_harness.embedded.reset", **dev)

        assert "is empty" in said
        current = await run("pg_harness.embedded", "alembic", "current", **dev)
        assert "(head)" not in current  # no stamp: the next migrate starts from the base


async def test_reset_db_leaves_the_database_of_database_url_alone(database_url: URL) -> None:
    given = {"DATABASE_URL": database_url.render_as_string(hide_password=False)}

    said = await run("pg_harness.embedded.reset", **given)

    assert "left as it is" in said
    assert "(head)" in await run("pg_harness.embedded", "alembic", "current", **given)
