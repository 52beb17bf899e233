"""The health probes: GET /health, /health/live and /health/ready; on the API's port
readiness says status only, the details reach the operator."""

import logging
from typing import cast

import anyio
import pytest
from alembic.script import ScriptDirectory
from in_process import app_client, settings_for
from pg_runtime.health import readiness_details
from probe.migrations import alembic_config, migrations
from probe.session import sessionmanager
from probe.settings import ProbeSettings
from scaleout.probes import add_probe, read_probe
from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool, QueuePool


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
        details = await readiness_details(sessionmanager, migrations)

    head = migrations.code_head()
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "reason": None}
    assert details.model_dump() == {
        "status": "ready",
        "database": "reachable",
        "code_revision": head,
        "database_revisions": [head] if head else [],
        "reason": None,
        "standbys": None,
    }


async def test_not_ready_when_the_database_is_behind_logs_both_revisions(
    fresh_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    head = migrations.code_head()
    script = ScriptDirectory.from_config(alembic_config())
    previous = None if head is None else script.get_revision(head).down_revision
    if not isinstance(previous, str):
        pytest.skip("needs two revisions in a line: the head and one before it")
    await set_database_revision(fresh_database, previous)

    async with app_client(settings_for(fresh_database)) as client:
        with caplog.at_level(logging.WARNING, logger="pg_runtime.health"):
            response = await client.get("/health/ready")
        details = await readiness_details(sessionmanager, migrations)

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "reason": "database schema not migrated for this code",
    }
    assert details.model_dump() == {
        "status": "not ready",
        "database": "reachable",
        "code_revision": migrations.code_head(),
        "database_revisions": [previous],
        "reason": None,
        "standbys": None,
    }
    # The operator's log has both revisions; the API's port has neither.
    [logged] = [r.getMessage() for r in caplog.records if r.name == "pg_runtime.health"]
    assert previous in logged
    assert str(migrations.code_head()) in logged
    assert previous not in response.text


async def test_ready_when_the_database_is_ahead_as_in_a_rolling_deploy(
    fresh_database: URL,
) -> None:
    # A revision this code does not know: a newer release has migrated the database.
    await set_database_revision(fresh_database, "f00dfacef00d")

    async with app_client(settings_for(fresh_database)) as client:
        response = await client.get("/health/ready")
        details = await readiness_details(sessionmanager, migrations)

    assert response.status_code == 200
    assert details.database_revisions == ["f00dfacef00d"]


async def test_not_ready_before_the_first_migration(fresh_database: URL) -> None:
    if migrations.code_head() is None:
        pytest.skip("with no revision yet, every database has what the code needs")
    engine = create_async_engine(fresh_database, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE alembic_version"))
    await engine.dispose()

    async with app_client(settings_for(fresh_database)) as client:
        response = await client.get("/health/ready")
        details = await readiness_details(sessionmanager, migrations)

    assert response.status_code == 503
    assert details.database_revisions == []


async def test_not_ready_when_the_database_is_unreachable(database_url: URL) -> None:
    async with app_client(settings_for(database_url.set(port=1))) as client:
        response = await client.get("/health/ready")
        details = await readiness_details(sessionmanager, migrations)

    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "reason": "database unreachable"}
    assert details.model_dump() == {
        "status": "not ready",
        "database": "unreachable",
        "code_revision": migrations.code_head(),
        "database_revisions": None,
        "reason": "ConnectionRefusedError",
        "standbys": None,
    }


def in_use() -> list[int]:
    """Connections checked out of the write pool and of the read pool."""
    engines = (sessionmanager.engine, sessionmanager.read_engine)
    return [cast(QueuePool, engine.pool).checkedout() for engine in engines]


async def pools_taken(size: int) -> None:
    """Once all `size` connections of the write and of the read pool are checked out."""
    with anyio.fail_after(10):
        while True:
            if in_use() == [size, size]:
                return
            await anyio.sleep(0.02)


async def test_ready_and_healthy_while_slow_requests_hold_every_pooled_connection(
    fresh_database: URL,
) -> None:
    # One connection per pool, and a short wait for one: on the requests' pools the probes
    # would wait a second, then count the busy pool as a database away (503).
    settings = settings_for(fresh_database, db_pool_size=1, db_read_pool_size=1, db_pool_timeout=1)
    async with app_client(settings) as client:
        probe_id, _ = await add_probe(client)

        async def slow_write() -> None:
            async with sessionmanager.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(4)"))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(slow_write)
            tasks.start_soon(read_probe, client, probe_id, None, 4)
            await pools_taken(1)
            with anyio.fail_after(2):
                ready = await client.get("/health/ready")
                health = await client.get("/health")
            busy = in_use()

    assert busy == [1, 1], "the pools were freed before the probes answered"
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reason": None})
    assert (health.status_code, health.json()["database"]) == (200, "reachable")


async def test_a_burst_of_probes_costs_the_database_one_check(database_url: URL) -> None:
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    async with app_client(settings_for(database_url)) as client:
        event.listen(sessionmanager.health_engine.sync_engine, "before_cursor_execute", count)
        answers: list[int] = []

        async def probe() -> None:
            answers.append((await client.get("/health/ready")).status_code)

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(probe)

    assert answers == [200] * 20
    # One readiness check is two statements; without sharing it, 20 probes run 40.
    assert 2 <= len(statements) <= 4, statements
