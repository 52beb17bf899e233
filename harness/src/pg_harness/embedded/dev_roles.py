"""The development database's roles: `make run` as production runs, with least privilege.

The embedded server's `app` database gets the three roles of docs/roles.md: `app_owner`
(owns the database and its schema: DIRECT_URL, migrations), `app_app` (DATABASE_URL:
rows only) and `app_reader` (DATABASE_READER_URL: reads only). Each one's password lives
in a file of the data directory, `<role>.password`, created readable by its owner alone.
A database migrated before these roles existed is handed to `app_owner` on the next start.
"""

import os
import secrets
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from pg_harness.embedded.account import server_account
from pg_harness.roles import RunRoles, grant_roles, quoted

_LOGIN_ONLY = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
# Settings, and the role each one logs in as.
_SETTINGS = {"DIRECT_URL": "owner", "DATABASE_URL": "app", "DATABASE_READER_URL": "reader"}


def role_password(data_dir: Path, role: str) -> str:
    """The role's password, from its file in `data_dir`; a new one, in a new file, if none."""
    path = data_dir / f"{role}.password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    # Created with its final mode: never readable by another account, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(password)
    account = server_account()
    if not account.is_self:
        os.chown(path, account.uid, account.gid)
    return password


async def dev_role_urls(app_url: URL, data_dir: Path) -> dict[str, str]:
    """Create or update the roles on `app_url` (the admin's); the settings that use them."""
    names = RunRoles(str(app_url.database), "")
    passwords = {
        role: role_password(data_dir, role) for role in (names.owner, names.app, names.reader)
    }
    engine = create_async_engine(app_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            for role, password in passwords.items():
                await _login_role(connection, role, password)
            await connection.execute(
                text(
                    f"ALTER DATABASE {quoted(str(app_url.database))} OWNER TO {quoted(names.owner)}"
                )
            )
            await _hand_over_to(connection, names.owner)
            await grant_roles(connection, names.owner, names.app, names.reader)
    finally:
        await engine.dispose()
    role_of = {"owner": names.owner, "app": names.app, "reader": names.reader}
    return {
        setting: app_url.set(
            username=role_of[kind], password=passwords[role_of[kind]]
        ).render_as_string(hide_password=False)
        for setting, kind in _SETTINGS.items()
    }


async def _login_role(connection: AsyncConnection, role: str, password: str) -> None:
    exists = await connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    verb = "ALTER" if exists else "CREATE"
    # exec_driver_sql: CREATE ROLE takes no bind parameter. ALTER too, so that the password
    # in the file is always the one the server knows.
    await connection.exec_driver_sql(
        f"{verb} ROLE {quoted(role)} {_LOGIN_ONLY} PASSWORD '{password}'"
    )


async def _hand_over_to(connection: AsyncConnection, owner: str) -> None:
    # Tables, views and sequences of `public` that another role (the superuser, before the
    # roles existed) created; a sequence owned by a column follows its table.
    await connection.exec_driver_sql(
        f"""
DO $$
DECLARE relation regclass;
BEGIN
    FOR relation IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND c.relowner <> {_literal(owner)}::regrole
          AND NOT EXISTS (
              SELECT FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
          )
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', relation, {_literal(owner)});
    END LOOP;
END $$"""
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
