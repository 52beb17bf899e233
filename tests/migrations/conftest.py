"""Fixtures for migration tests: empty databases and the revision history."""

from collections.abc import AsyncIterator

import pytest
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import URL

from orm.migrations import alembic_config
from tests.databases import create_database, database_name, drop_database
from tests.server import RunDatabases


def revisions_base_to_head() -> list[Script]:
    """Every revision, oldest first; new ones are picked up without editing any test."""
    script = ScriptDirectory.from_config(alembic_config())
    return list(reversed(list(script.walk_revisions())))


@pytest.fixture(scope="module")
async def empty_database(
    run_databases: RunDatabases, worker_name: str, request: pytest.FixtureRequest
) -> AsyncIterator[URL]:
    """A database with no schema at all (from template0), for this module."""
    name = database_name(
        run_databases.run, f"{worker_name}_{request.module.__name__.split('.')[-1]}"
    )
    url = await create_database(run_databases.admin_url, name)
    yield url
    await drop_database(run_databases.admin_url, name)
