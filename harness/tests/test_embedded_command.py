"""Which command `python -m pg_harness.embedded COMMAND` runs when the environment is not
on PATH, as in a shell where it was never activated."""

import os
import sys
from pathlib import Path

import anyio
import pytest
from pg_harness.processes import reachable_dir
from pg_harness.project import project
from sqlalchemy.engine import URL, make_url

pytestmark = pytest.mark.slow

# The tools beside the interpreter running this test: the environment's bin folder.
BIN = Path(sys.executable).parent
# Neither alembic nor a `python` here, only the system's shell and tools.
BARE_PATH = "/usr/bin:/bin"


async def wrapper(*command: str, **env: str) -> tuple[int, str, str]:
    """The wrapper's exit status, output and errors, run with PATH=BARE_PATH and `env`."""
    done = await anyio.run_process(
        [sys.executable, "-m", "pg_harness.embedded", *command],
        cwd=project().root,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        | {"PATH": BARE_PATH}
        | env,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def rendered(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def test_a_command_beside_the_interpreter_runs_though_not_on_path(
    database_url: URL,
) -> None:
    status, output, errors = await wrapper(
        "alembic", "current", DATABASE_URL=rendered(database_url)
    )

    assert status == 0, errors
    assert "(head)" in output  # the worker's database is migrated to the head


async def test_the_commands_own_children_find_the_environments_tools(database_url: URL) -> None:
    status, output, errors = await wrapper(
        "sh", "-c", "command -v alembic && command -v python", DATABASE_URL=rendered(database_url)
    )

    assert status == 0, errors
    assert output.split() == [str(BIN / "alembic"), str(BIN / "python")]


async def test_an_unknown_command_fails_in_one_line_and_starts_no_server() -> None:
    with reachable_dir("test-command-") as parent:
        data_dir = parent / "dev"

        status, output, errors = await wrapper("no-such-command", EMBEDDED_PGDATA=str(data_dir))

        assert status == 127  # what a shell answers for a command it cannot find
        assert output == ""
        assert errors.startswith("error: no-such-command: ")
        assert errors.count("\n") == 1, errors  # one line, no traceback
        assert not data_dir.exists()  # the server was not started for nothing


SHOW_URLS = (
    "import os; print(*(os.environ[name] for name in "
    "('DIRECT_URL', 'DATABASE_URL', 'DATABASE_READER_URL')))"
)


async def test_the_development_server_runs_commands_as_the_three_roles() -> None:
    with reachable_dir("test-roles-") as parent:
        data_dir = parent / "dev"
        migrate_then_show = f'alembic upgrade head && python -c "{SHOW_URLS}"'

        status, output, errors = await wrapper(
            "sh", "-c", migrate_then_show, EMBEDDED_PGDATA=str(data_dir)
        )
        again, output_again, _ = await wrapper(
            "python", "-c", SHOW_URLS, EMBEDDED_PGDATA=str(data_dir)
        )

        assert status == 0, errors  # migrated as app_owner, which is no superuser
        urls = [make_url(url) for url in output.split()]
        assert [url.username for url in urls] == ["app_owner", "app_app", "app_reader"]
        for url in urls:
            password_file = data_dir / f"{url.username}.password"
            assert password_file.read_text() == url.password
            assert password_file.stat().st_mode & 0o777 == 0o600
        assert again == 0
        # The same roles and passwords, kept (the port is the server's of the moment).
        kept = [(url.username, url.password) for url in map(make_url, output_again.split())]
        assert kept == [(url.username, url.password) for url in urls]
