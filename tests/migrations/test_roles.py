"""Migrations run as the schema's owner (DIRECT_URL) while the app runs as its own role
(DATABASE_URL), which the owner's default privileges give each new table: no revision
grants anything, and the app only reads alembic_version."""

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial

import anyio
import asyncpg
import pytest
from pg_harness.server import RunDatabases
from pg_harness.urls import connected
from pg_runtime.testing import role_env, role_urls
from sqlalchemy.engine import URL

from tests.in_process import app_client, settings_for

pytestmark = pytest.mark.slow


@pytest.fixture
async def unmigrated_database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_roles", migrated=False) as url:
        yield url


async def test_alembic_migrates_as_the_owner_and_the_app_role_uses_every_new_table(
    unmigrated_database: URL,
) -> None:
    env = os.environ | role_env(unmigrated_database)
    run = partial(
        subprocess.run,
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    migrated = await anyio.to_thread.run_sync(run)
    assert migrated.returncode == 0, migrated.stderr

    owner = unmigrated_database.username
    async with connected(unmigrated_database) as connection:
        owners = await connection.fetch(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'"
        )
    assert {row["tableowner"] for row in owners} == {owner}

    # Production's start-up check passes, and a write goes through the app's role.
    async with app_client(settings_for(unmigrated_database)) as client:
        created = await client.post("/users", json={"email": "roles@example.com", "name": "Roles"})
    assert created.status_code == 201, created.text

    app_url = role_urls(unmigrated_database)["database_url"]
    async with connected(app_url) as app:
        assert await app.fetchval("SELECT count(*) FROM alembic_version") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("UPDATE alembic_version SET version_num = 'x'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("DELETE FROM alembic_version")
