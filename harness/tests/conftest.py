"""These tests run on the project that hosts the harness: its settings must not reach them.

As the project's own conftest does for its tests: a developer's DATABASE_URL (in the
environment or in `.env`) may name a real database, and the processes these tests start
(the embedded wrapper, a copy's `make test`) read the project's settings.
"""

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from newcomer import NOT_COPIED, Newcomer
from pg_harness.databases import create_database, database_name
from pg_harness.processes import reachable_dir
from pg_harness.project import project
from pg_harness.server import RunDatabases


def pytest_configure(config: pytest.Config) -> None:
    # From the project's root: these tests live outside it, in no package of its own.
    settings = project().import_module("app.settings")
    for name in (field.upper() for field in settings.Settings.model_fields):
        os.environ.pop(name, None)
    os.environ["ENV_FILE"] = ""  # the template's settings then read no .env


@pytest.fixture
def newcomer_copy() -> Iterator[Path]:
    """A copy of the project that the embedded server's account can reach."""
    with reachable_dir("newcomer-") as parent:
        # A name of its own: the copy's kept template is named after its folder, and two
        # copies may run at once on one server.
        copy = parent / f"service_{secrets.token_hex(3)}"
        shutil.copytree(project().root, copy, ignore=NOT_COPIED)
        yield copy


@pytest.fixture
async def newcomer(newcomer_copy: Path, run_databases: RunDatabases, worker_name: str) -> Newcomer:
    if not os.environ.get("TEST_DATABASE_URL"):
        return Newcomer(newcomer_copy, test_server=None, dev_server=None)
    # `make run`'s database on the given server: a database of this run's, dropped with it.
    name = database_name(run_databases.run, f"{worker_name}_newcomer_dev")
    dev = await create_database(run_databases.admin_url, name)
    return Newcomer(newcomer_copy, test_server=run_databases.admin_url, dev_server=dev)
