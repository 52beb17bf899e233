"""`python -m pg_runtime.roles` (`make roles`) on a fresh database: it creates the app's and
the reader's roles with their privileges, prints their URLs, changes nothing on a second
run, and says what to do when its login cannot create roles."""

import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial

import anyio
import asyncpg
import pytest
from pg_harness.server import RunDatabases
from pg_harness.urls import connected
from sqlalchemy.engine import URL, make_url

pytestmark = pytest.mark.slow


async def roles_command(direct_url: URL, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DIRECT_"))}
    env["DIRECT_URL"] = direct_url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "pg_runtime.roles", *args]
    run = partial(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    return await anyio.to_thread.run_sync(run)


def printed_url(output: str, setting: str) -> URL:
    found = re.search(rf"^{setting}=(\S+)$", output, re.M)
    assert found, output
    return make_url(found[1])


@pytest.fixture
async def owner_with_createrole(
    run_databases: RunDatabases, fresh_database: URL
) -> AsyncIterator[tuple[URL, str]]:
    """The fresh database, owned by a login with CREATEROLE (as a provider's owner login
    is), and the prefix of the roles the command creates; every role dropped afterwards."""
    prefix = f"{run_databases.roles.prefix}_cmd{secrets.randbelow(10**6)}"
    owner, password = f"{prefix}_owner", secrets.token_urlsafe(16)
    admin_url = run_databases.admin_url
    async with connected(admin_url.set(database=fresh_database.database)) as admin:
        await admin.execute(f"CREATE ROLE \"{owner}\" LOGIN CREATEROLE PASSWORD '{password}'")
        await admin.execute(f'ALTER DATABASE "{fresh_database.database}" OWNER TO "{owner}"')
        await admin.execute(f'GRANT "{run_databases.roles.owner}" TO "{owner}"')
        await admin.execute(f'REASSIGN OWNED BY "{run_databases.roles.owner}" TO "{owner}"')
    try:
        yield fresh_database.set(username=owner, password=password), prefix
    finally:
        async with connected(admin_url.set(database=fresh_database.database)) as admin:
            for role in (f"{prefix}_app", f"{prefix}_reader", owner):
                exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                if exists:
                    await admin.execute(
                        f'REASSIGN OWNED BY "{role}" TO "{run_databases.roles.owner}"'
                    )
                    await admin.execute(f'DROP OWNED BY "{role}"')
            await admin.execute(
                f'ALTER DATABASE "{fresh_database.database}" OWNER TO "{run_databases.roles.owner}"'
            )
        async with connected(admin_url) as admin:
            for role in (f"{prefix}_app", f"{prefix}_reader", owner):
                await admin.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_the_roles_command_creates_roles_of_least_privilege(
    owner_with_createrole: tuple[URL, str],
) -> None:
    owner_url, prefix = owner_with_createrole

    first = await roles_command(owner_url, "--prefix", prefix)
    assert first.returncode == 0, first.stderr
    app_url = printed_url(first.stdout, "DATABASE_URL")
    reader_url = printed_url(first.stdout, "DATABASE_READER_URL")
    assert (app_url.username, reader_url.username) == (f"{prefix}_app", f"{prefix}_reader")
    assert first.stderr == ""

    # A table the owner creates later, as a new migration would: no GRANT of its own.
    async with connected(owner_url) as owner:
        await owner.execute("CREATE TABLE later (id int GENERATED ALWAYS AS IDENTITY, x int)")
    async with connected(app_url) as app:
        await app.execute("INSERT INTO later (x) VALUES (1)")
        assert await app.fetchval("SELECT count(*) FROM later") == 1
        for ddl in ("CREATE TABLE intruder (id int)", "DROP TABLE later", "TRUNCATE later"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(ddl)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("UPDATE alembic_version SET version_num = 'x'")
    async with connected(reader_url) as reader:
        assert await reader.fetchval("SELECT count(*) FROM later") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute("INSERT INTO later (x) VALUES (2)")

    again = await roles_command(owner_url, "--prefix", prefix)
    assert again.returncode == 0, again.stderr
    assert "password unchanged" in again.stdout
    for setting in ("DATABASE_URL", "DATABASE_READER_URL"):
        assert printed_url(again.stdout, setting).password is None
    assert str(owner_url.password) not in first.stdout + again.stdout
    async with connected(app_url) as app:  # the first run's password still works
        assert await app.fetchval("SELECT count(*) FROM later") == 1


async def test_the_roles_command_says_what_to_do_without_createrole(
    run_databases: RunDatabases, fresh_database: URL
) -> None:
    # The run's owner owns the database but cannot create roles.
    prefix = f"{run_databases.roles.prefix}_nocreate"
    result = await roles_command(fresh_database, "--prefix", prefix)

    assert result.returncode != 0
    assert result.stderr.strip() == (
        "error: DIRECT_URL's login cannot create roles (it lacks CREATEROLE): create "
        f"{prefix}_app and {prefix}_reader in your provider's console, or as a superuser, "
        "with the SQL in docs/roles.md, then run this again"
    )
    async with connected(run_databases.admin_url) as admin:
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)", prefix
            )
            == 0
        )
