"""`python -m probe` as production serves a service: migrations, worker processes, SIGTERM.

The template's tests/app/test_serving.py checks that its `make serve` does the same from
its runtime-only environment."""

import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack

import anyio
import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.server import RunDatabases
from pg_harness.urls import asyncpg_connect_args
from pg_runtime.testing import role_env
from probe.migrations import alembic_config
from probe.routes import router
from served_probe import served_probe
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow


def env_for(url: URL, **settings: str) -> dict[str, str]:
    return {**role_env(url), **settings}


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    with anyio.fail_after(seconds):
        while True:
            if await condition():
                return
            await anyio.sleep(0.05)


@pytest.fixture
async def unmigrated_database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_serve", migrated=False) as url:
        yield url


async def app_connections(url: URL) -> int:
    """Connections to the database at `url` other than ours."""
    connection = await asyncpg.connect(**asyncpg_connect_args(url))
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


@pytest.mark.parametrize("through_pgbouncer", [False, True], ids=["direct", "pgbouncer"])
async def test_serve_migrates_then_each_worker_owns_its_pool(
    unmigrated_database: URL, run_databases: RunDatabases, through_pgbouncer: bool
) -> None:
    # 2 workers x (1 + 0 + 1): the server must never see more than 4 connections from the app.
    env = env_for(
        unmigrated_database,
        MIGRATE_ON_START="true",
        WORKERS="2",
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="0",
        DB_READ_POOL_SIZE="1",
    )
    with ExitStack() as stack:
        if through_pgbouncer:  # as docs/production.md sets it up
            require_pgbouncer()
            bouncer = PgBouncer(run_databases.admin_url, users=run_databases.roles.passwords)
            stack.callback(bouncer.stop)
            bouncer.start()
            env |= env_for(bouncer.url_for(unmigrated_database), DB_BEHIND_PGBOUNCER="true")
            env["DIRECT_URL"] = unmigrated_database.render_as_string(hide_password=False)
        served = stack.enter_context(served_probe(env))
        # Both workers up, so both can take requests.
        await anyio.to_thread.run_sync(served.wait_for_log, "database pools: up to 2 conn", 2)
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            ready = await client.get("/health/ready")
            most = 0

            async def load() -> None:
                for _ in range(10):
                    response = await client.get(router.url_path_for("list_probes"))
                    assert response.status_code == 200, response.text

            async with anyio.create_task_group() as tasks:
                for _ in range(32):
                    tasks.start_soon(load)
                for _ in range(10):
                    most = max(most, await app_connections(unmigrated_database))
                    await anyio.sleep(0.05)
        log = served.log()

    assert ready.status_code == 200, ready.text  # the migrations ran first
    assert log.count("database pools: up to 2 connections in this process") == 2, log
    assert len(set(re.findall(r"Started server process \[(\d+)\]", log))) == 2, log
    # Each worker: 1 + 1 pooled, and the health probes' own for the one that answered one.
    assert 1 <= most <= 5, f"{most} connections from 2 workers with 1 + 1 (+ 1) connections each"


async def test_migrate_on_start_migrates_once_however_many_workers_start(
    unmigrated_database: URL,
) -> None:
    env = env_for(unmigrated_database, WORKERS="2", MIGRATE_ON_START="true")
    with served_probe(env) as served:
        log = await anyio.to_thread.run_sync(served.wait_for_log, "database pools: up to", 2)
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            ready = await client.get("/health/ready")

    assert ready.status_code == 200, ready.text
    applied = re.findall(r"Running upgrade \S* ?-> (\w+)", log)
    history = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    oldest_first = [script.revision for script in reversed(list(history))]
    assert applied == oldest_first, log  # each once, by one of the two workers


async def test_sigterm_finishes_requests_in_flight_then_closes_the_pool(
    fresh_database: URL,
) -> None:
    with served_probe(env_for(fresh_database, SHUTDOWN_TIMEOUT="30")) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
            created = await client.post(router.url_path_for("create_probe"), json={"name": "A"})
            probe_id = created.json()["id"]
            # Another session holds the row, so the PATCH below stays in flight.
            holder = await asyncpg.connect(**asyncpg_connect_args(fresh_database))
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("SELECT 1 FROM probe WHERE id = $1 FOR UPDATE", probe_id)
            answers: list[httpx.Response] = []

            async def patch() -> None:
                path = router.url_path_for("update_probe", probe_id=probe_id)
                answers.append(await client.patch(path, json={"name": "B"}))

            async def patch_is_waiting() -> bool:
                return bool(
                    await holder.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                    )
                )

            async def refuses_new_connections() -> bool:
                try:
                    async with httpx.AsyncClient(base_url=served.url, timeout=1) as probe:
                        await probe.get("/health/live")
                except httpx.TransportError:
                    return True
                return False

            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(patch)
                    await wait_for(patch_is_waiting)
                    served.terminate()
                    await wait_for(refuses_new_connections)
                    await transaction.commit()  # lets the PATCH go on
            finally:
                await holder.close()
            exit_code = await anyio.to_thread.run_sync(served.wait)
        log = served.log()

    assert [answer.status_code for answer in answers] == [200], log
    assert answers[0].json()["name"] == "B"
    # uvicorn ends by raising the signal again, once its shutdown is done, so the process
    # manager sees a process that stopped on SIGTERM as asked.
    assert exit_code in (0, -signal.SIGTERM), log
    assert log.index("Waiting for application shutdown") < log.index("database pool closed"), log
    assert await app_connections(fresh_database) == 0
