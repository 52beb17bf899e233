"""A run's roles: the owner, app and reader of production, of the run's own, dropped with
its databases; the kept template migrated by a role that is no superuser."""

import asyncpg
import pytest
from pg_harness.databases import PREFIX, TestRun, create_database, drop_database
from pg_harness.roles import ROLE_MARK
from pg_harness.server import RunDatabases
from pg_harness.urls import connected
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow


async def roles_named(admin_url: URL, prefix: str) -> set[str]:
    async with connected(admin_url) as admin:
        rows = await admin.fetch(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", prefix
        )
    return {row["rolname"] for row in rows}


async def test_a_runs_database_belongs_to_its_owner_and_its_app_role_only_uses_rows(
    run_databases: RunDatabases, fresh_database: URL
) -> None:
    roles = run_databases.roles
    assert fresh_database.username == roles.owner
    async with connected(fresh_database) as owner:
        database_owner = await owner.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        )
        table_owners = await owner.fetch(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        )
        superuser = await owner.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = $1", roles.owner
        )
    assert database_owner == roles.owner
    assert [row["tableowner"] for row in table_owners] == [roles.owner]
    assert superuser is False

    async with connected(fresh_database.set(username=roles.app)) as app:
        assert await app.fetchval("SELECT count(*) FROM alembic_version") == 1
        for statement in ("CREATE TABLE intruder (id int)", "DROP TABLE alembic_version"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("UPDATE alembic_version SET version_num = 'x'")
    async with connected(fresh_database.set(username=roles.reader)) as reader:
        assert await reader.fetchval("SELECT count(*) FROM alembic_version") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute("DELETE FROM alembic_version")


async def test_the_kept_template_is_migrated_by_a_role_that_is_no_superuser(
    run_databases: RunDatabases,
) -> None:
    async with connected(run_databases.admin_url) as admin:
        role = await admin.fetchrow(
            "SELECT rolsuper, rolcanlogin, shobj_description(oid, 'pg_authid') AS mark "
            "FROM pg_roles WHERE rolname = $1",
            run_databases.template,
        )
    assert role is not None
    assert (role["rolsuper"], role["rolcanlogin"], role["mark"]) == (False, False, ROLE_MARK)


async def test_a_run_drops_its_roles_with_its_databases(run_databases: RunDatabases) -> None:
    run = await TestRun.begin(run_databases.admin_url)
    prefix = f"{PREFIX}{run.number}_"
    try:
        assert await roles_named(run_databases.admin_url, prefix) == {
            run.roles.owner,
            run.roles.app,
            run.roles.reader,
        }
        await create_database(
            run_databases.admin_url, run.database("clone"), run_databases.template, run.roles
        )
    finally:
        await run.end()

    assert await roles_named(run_databases.admin_url, prefix) == set()


async def test_the_next_run_drops_a_dead_runs_roles_and_no_others(
    run_databases: RunDatabases,
) -> None:
    dead = await TestRun.begin(run_databases.admin_url)
    dead_prefix = f"{PREFIX}{dead.number}_"
    await create_database(
        run_databases.admin_url, dead.database("left"), run_databases.template, dead.roles
    )
    await dead._lock.close()  # as a killed run's connection goes: its lock released
    await dead._engine.dispose()
    someone_elses = f"{PREFIX}1_someone_elses_role"
    async with connected(run_databases.admin_url) as admin:
        await admin.execute(f'CREATE ROLE "{someone_elses}"')
    try:
        assert len(await roles_named(run_databases.admin_url, dead_prefix)) == 3

        next_run = await TestRun.begin(run_databases.admin_url)
        await next_run.end()

        assert await roles_named(run_databases.admin_url, dead_prefix) == set()
        assert someone_elses in await roles_named(run_databases.admin_url, someone_elses)
    finally:
        await drop_database(run_databases.admin_url, dead.database("left"))
        async with connected(run_databases.admin_url) as admin:
            await admin.execute(f'DROP ROLE IF EXISTS "{someone_elses}"')
            for role in (dead.roles.app, dead.roles.reader, dead.roles.owner):
                await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
