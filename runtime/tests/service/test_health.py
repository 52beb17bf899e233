"""The health probes: GET /health, /health/live and /health/ready."""

import pytest
from alembic.script import ScriptDirectory
from in_process import app_client, settings_for
from probe.migrations import alembic_config, migrations
from probe.settings import ProbeSettings
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def test_health_with_reachable_database_returns_200(app_settings: ProbeSettings) -> None:
    async with app_client(app_settings) as client:
        response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "reachable"}


async def test_health_with_unreachable_database_returns_503(database_url: URL) -> None:
    # Port 1 on loopback refuses connections at once.
    async with app_client(settings_for(database_url.set(port=1))) as client:
        response = await client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


async def set_database_revision(database_url: URL, revision: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    async with engine.begin() as connection:
        # Delete and insert: before the project's first revision the table has no row.
        await connection.execute(text("DELETE FROM alembic_version"))
        await connection.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision}
        )
    await engine.dispose()


async def test_liveness_answers_without_the_database(database_url: URL) -> None:
    async with app_client(settings_for(database_url.set(port=1))) as client:
        response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_is_at_the_code_head(database_url: URL) -> None:
    async with app_client(settings_for(database_url)) as client:
        response = await client.get("/health/ready")

    head = migrations.code_head()
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "reachable",
        "code_revision": head,
        "database_revisions": [head] if head else [],
        "reason": None,
        "standbys": None,
    }


async def test_not_ready_when_the_database_is_behind_names_both_revisions(
    fresh_database: URL,
) -> None:
    head = migrations.code_head()
    script = ScriptDirectory.from_config(alembic_config())
    previous = None if head is None else script.get_revision(head).down_revision
    if not isinstance(previous, str):
        pytest.skip("needs two revisions in a line: the head and one before it")
    await set_database_revision(fresh_database, previous)

    async with app_client(settings_for(fresh_database)) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "database": "reachable",
        "code_revision": migrations.code_head(),
        "database_revisions": [previous],
        "reason": None,
        "standbys": None,
    }


async def test_ready_when_the_database_is_ahead_as_in_a_rolling_deploy(
    fresh_database: URL,
) -> None:
    # A revision this code does not know: a newer release has migrated the database.
    await set_database_revision(fresh_database, "f00dfacef00d")

    async with app_client(settings_for(fresh_database)) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["database_revisions"] == ["f00dfacef00d"]


async def test_not_ready_before_the_first_migration(fresh_database: URL) -> None:
    if migrations.code_head() is None:
        pytest.skip("with no revision yet, every database has what the code needs")
    engine = create_async_engine(fresh_database, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE alembic_version"))
    await engine.dispose()

    async with app_client(settings_for(fresh_database)) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["database_revisions"] == []


async def test_not_ready_when_the_database_is_unreachable(database_url: URL) -> None:
    async with app_client(settings_for(database_url.set(port=1))) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "database": "unreachable",
        "code_revision": migrations.code_head(),
        "database_revisions": None,
        "reason": "ConnectionRefusedError",
        "standbys": None,
    }
