"""What a handler sets on its database session is gone for the next request on the same
pooled connection (pg_runtime/session_reset.py), directly and behind PgBouncer.

One connection per pool, one server connection behind PgBouncer: the next request's
connection is certainly the one the handler changed.
"""

import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient
from in_process import app_client, settings_for
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.roles import ROLE_MARK
from pg_harness.server import RunDatabases
from pg_harness.urls import asyncpg_connect_args, connected
from probe.dependencies import ReadSession, WriteSession
from probe.factory import create_app
from probe.models import Probe
from sqlalchemy import Executable, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

# The session's state as a request sees it; pg_catalog's names only, so that a search_path
# left pointing elsewhere cannot hide it.
STATE = text(
    "SELECT pg_backend_pid() AS pid,"
    " current_setting('default_transaction_read_only') AS read_only,"
    " current_setting('statement_timeout') AS statement_timeout,"
    " current_setting('search_path') AS search_path,"
    " current_user::text AS role,"
    " (SELECT count(*) FROM pg_catalog.pg_locks"
    "   WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,"
    " (SELECT count(*) FROM pg_catalog.pg_listening_channels()) AS listening,"
    " (SELECT count(*) FROM pg_catalog.pg_class"
    "   WHERE relnamespace = pg_my_temp_schema()) AS temp_tables"
)

LEFT_BEHIND: dict[str, list[str | Executable]] = {
    # Read-only turned off (the next read's INSERT would commit), or on where it was off (a
    # write's, or a read's behind PgBouncer: every later write would fail).
    "read-only flipped": ["SET default_transaction_read_only = {flipped}"],
    "statement_timeout": ["SET statement_timeout = 0"],
    "set_config": ["SELECT set_config('statement_timeout', '0', false)"],
    "search_path": ["SET search_path = pg_catalog"],
    "role": ["SET ROLE {settable_role}"],  # a role of the test's own (settable_role)
    "advisory lock": ["SELECT pg_advisory_lock(25)"],
    # Core, not raw SQL: what the ORM and Core build is reset only when it names such a function.
    "set_config from Core": [select(func.set_config("statement_timeout", "0", False))],
    "advisory lock from Core": [select(func.pg_advisory_lock(25))],
    "listen": ["LISTEN hostile"],
    "temp table": ["SET default_transaction_read_only = off", "CREATE TEMP TABLE hostile (x int)"],
}


async def state_of(session: AsyncSession) -> dict[str, Any]:
    return dict((await session.execute(STATE)).one()._mapping)


async def leave(session: AsyncSession, case: str, settable_role: str) -> dict[str, Any]:
    """Run `case`'s statements; the state they made, seen before the request ends."""
    flipped = "off" if (await state_of(session))["read_only"] == "on" else "on"
    for statement in LEFT_BEHIND[case]:
        if isinstance(statement, str):
            statement = text(statement.format(flipped=flipped, settable_role=settable_role))
        await session.execute(statement)
    during = await state_of(session)
    await session.commit()  # behind PgBouncer, a rollback alone would undo most of it
    return during


@pytest.fixture
async def settable_role(run_databases: RunDatabases) -> AsyncIterator[str]:
    """A role the run's app and reader roles may SET ROLE to, and nothing more: it can
    neither log in nor reach a table (the app's roles are no superusers, nor members of
    any built-in role). Marked as the harness's, so a run that dies leaves it to the next."""
    roles = run_databases.roles
    name = f"{roles.prefix}_settable{secrets.randbelow(10**6)}"
    async with connected(run_databases.admin_url) as admin:
        await admin.execute(f'CREATE ROLE "{name}" NOLOGIN')
        await admin.execute(f"COMMENT ON ROLE \"{name}\" IS '{ROLE_MARK}'")
        await admin.execute(f'GRANT "{name}" TO "{roles.app}", "{roles.reader}"')
    try:
        yield name
    finally:
        async with connected(run_databases.admin_url) as admin:
            await admin.execute(f'DROP ROLE "{name}"')


@pytest.fixture(params=["direct", pytest.param("pgbouncer", marks=pytest.mark.slow)])
async def client(
    request: pytest.FixtureRequest,
    fresh_database: URL,
    run_databases: RunDatabases,
    settable_role: str,
) -> AsyncIterator[AsyncClient]:
    one_each = {"db_pool_size": 1, "db_max_overflow": 0, "db_read_pool_size": 1}
    if request.param == "direct":
        settings = settings_for(fresh_database, **one_each)
        async with served(settings, settable_role) as client:
            yield client
        return
    require_pgbouncer()
    # Serving the run's roles, as the app logs in as them: one server connection each.
    bouncer = PgBouncer(run_databases.admin_url, pool_size=1, users=run_databases.roles.passwords)
    bouncer.start()
    try:
        settings = settings_for(
            bouncer.url_for(fresh_database),
            db_behind_pgbouncer=True,
            direct_url=fresh_database,
            db_pgbouncer_prepared_statements=bouncer.tracks_prepared_statements,
            **one_each,
        )
        async with served(settings, settable_role) as client:
            yield client
    finally:
        bouncer.stop()


def served(settings: Any, settable_role: str = "") -> Any:
    app = create_app(settings)

    @app.get("/test/state")
    async def read_state(session: ReadSession) -> dict[str, Any]:
        return await state_of(session)

    @app.post("/test/state")
    async def write_state(session: WriteSession) -> dict[str, Any]:
        return await state_of(session)

    @app.get("/test/leave/{case}")
    async def leave_on_read(case: str, session: ReadSession) -> dict[str, Any]:
        return await leave(session, case, settable_role)

    @app.post("/test/leave/{case}")
    async def leave_on_write(case: str, session: WriteSession) -> dict[str, Any]:
        return await leave(session, case, settable_role)

    @app.get("/test/orm")
    async def read_with_the_orm(session: ReadSession) -> list[str | None]:
        return [probe.name for probe in await session.scalars(select(Probe).limit(1))]

    @app.get("/test/insert")
    async def insert_on_read(session: ReadSession) -> None:
        await session.execute(text("INSERT INTO probe (name) VALUES ('written by a GET')"))
        await session.commit()

    return app_client(app)


@pytest.mark.parametrize("case", LEFT_BEHIND)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_what_a_handler_set_is_gone_for_the_next_request(
    client: AsyncClient, case: str, method: str, request: pytest.FixtureRequest
) -> None:
    behind_pgbouncer = request.node.callspec.params["client"] == "pgbouncer"
    if behind_pgbouncer and method == "GET" and case == "temp table":
        pytest.skip("a read behind PgBouncer is a READ ONLY transaction: no CREATE at all")

    before = await client.request(method, "/test/state")
    during = await client.request(method, f"/test/leave/{case}")
    after = await client.request(method, "/test/state")

    assert (before.status_code, during.status_code, after.status_code) == (200, 200, 200)
    if case != "listen" or (method == "GET" and not behind_pgbouncer):
        # the handler did change its session (a LISTEN in a transaction shows at COMMIT)
        assert during.json() != before.json()
    if not behind_pgbouncer:
        assert during.json()["pid"] == after.json()["pid"] == before.json()["pid"]
    assert {**after.json(), "pid": None} == {**before.json(), "pid": None}


async def test_a_get_that_turned_read_only_off_leaves_the_next_get_unable_to_write(
    client: AsyncClient,
) -> None:
    turned_off = await client.get("/test/leave/read-only flipped")
    written = await client.get("/test/insert")
    count = await client.get("/probes")

    assert turned_off.status_code == 200
    assert written.status_code == 500
    assert count.json() == []


async def last_statement_of(database: URL, pid: int) -> str:
    """What the server last ran for backend `pid`, asked on a connection of the test's own."""
    connection = await asyncpg.connect(**asyncpg_connect_args(database))
    try:
        return str(
            await connection.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        )
    finally:
        await connection.close()


async def test_a_request_of_orm_statements_alone_is_not_reset(fresh_database: URL) -> None:
    settings = settings_for(fresh_database, db_pool_size=1, db_max_overflow=0, db_read_pool_size=1)
    async with served(settings) as client:
        pid = (await client.get("/test/state")).json()["pid"]  # raw SQL: reset
        after_raw_sql = await last_statement_of(fresh_database, pid)
        orm = await client.get("/test/orm")
        after_orm = await last_statement_of(fresh_database, pid)

    assert after_raw_sql.startswith("SELECT pg_advisory_unlock_all(); CLOSE ALL;")
    assert orm.status_code == 200
    assert after_orm.startswith("SELECT probe.id")  # the ORM's own, and no round trip after
