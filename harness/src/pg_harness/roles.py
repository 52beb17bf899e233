"""The roles of a test run: the same three the app has in production, of the run's own.

Each run creates `pytest_r<run>_owner` (owns its databases and their schema; migrations
run as it), `pytest_r<run>_app` (DATABASE_URL: rows only) and `pytest_r<run>_reader`
(DATABASE_READER_URL: reads only), with one password, and drops them when it ends, after
its databases. The migrated template kept between runs is owned by a role of its own,
named as the template and dropped with it; each clone hands its objects to the run's owner
and grants the app and reader their privileges, as the project's roles command does in
production (`grant_roles` of the project's migrations module).
Like databases, a role is only ever dropped if it carries MARK.
"""

import importlib
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from pg_harness.project import project

ROLE_MARK = "made by the test harness of this project (pg_harness), which drops it"
_DEPENDENT_OBJECTS_STILL_EXIST = "2BP01"
_LOGIN_ONLY = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class RunRoles:
    """The run's three role names (`<prefix>_owner`, `_app`, `_reader`) and their password."""

    prefix: str
    password: str

    @property
    def owner(self) -> str:
        return f"{self.prefix}_owner"

    @property
    def app(self) -> str:
        return f"{self.prefix}_app"

    @property
    def reader(self) -> str:
        return f"{self.prefix}_reader"

    @property
    def passwords(self) -> dict[str, str]:
        """Each role's password (they share one), as PgBouncer's auth file lists them."""
        return dict.fromkeys((self.owner, self.app, self.reader), self.password)

    async def create(self, admin: AsyncConnection) -> None:
        for name in (self.owner, self.app, self.reader):
            # exec_driver_sql: the password is no bind parameter (CREATE ROLE takes none).
            await admin.exec_driver_sql(
                f"CREATE ROLE {quoted(name)} {_LOGIN_ONLY} PASSWORD '{self.password}'"
            )
            await mark_role(admin, name)
        # The owner may end the app's and the reader's sessions (pg_terminate_backend), as
        # a test of a server going away does; it has their privileges anyway.
        await admin.execute(
            text(f"GRANT {quoted(self.app)}, {quoted(self.reader)} TO {quoted(self.owner)}")
        )


async def mark_role(admin: AsyncConnection, name: str) -> None:
    await admin.execute(text(f"COMMENT ON ROLE {quoted(name)} IS '{ROLE_MARK}'"))


async def create_template_owner(admin: AsyncConnection, name: str) -> None:
    """The role a kept template's objects belong to: it cannot log in; kept if it exists."""
    exists = await admin.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
    if not exists:
        await admin.execute(text(f"CREATE ROLE {quoted(name)} NOLOGIN"))
        await mark_role(admin, name)


async def drop_role(admin: AsyncConnection, name: str) -> None:
    """Drop role `name` if the harness made it (it carries ROLE_MARK)."""
    marked = await admin.scalar(
        text(
            "SELECT 1 FROM pg_roles WHERE rolname = :name "
            "AND shobj_description(oid, 'pg_authid') = :mark"
        ),
        {"name": name, "mark": ROLE_MARK},
    )
    if not marked:
        return
    try:
        await admin.execute(text(f"DROP ROLE IF EXISTS {quoted(name)}"))
    except DBAPIError as error:
        # It still owns something, or holds privileges, in a database left behind (a run
        # killed mid-way): the run that drops that database drops it too.
        if getattr(error.orig, "sqlstate", None) != _DEPENDENT_OBJECTS_STILL_EXIST:
            raise


async def marked_roles(admin: AsyncConnection, prefix: str) -> list[str]:
    names = await admin.scalars(
        text(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, :prefix) "
            "AND shobj_description(oid, 'pg_authid') = :mark ORDER BY rolname"
        ),
        {"prefix": prefix, "mark": ROLE_MARK},
    )
    return list(names)


async def hand_over(clone: AsyncConnection, template_owner: str | None, roles: RunRoles) -> None:
    """In a clone (connected as the admin): the template's objects to the run's owner,
    then the app's and the reader's privileges, present and future."""
    if template_owner is not None:
        exists = await clone.scalar(
            text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": template_owner}
        )
        if exists:
            await clone.execute(
                text(f"REASSIGN OWNED BY {quoted(template_owner)} TO {quoted(roles.owner)}")
            )
            # Its grant to create in `public`, which the clone's owner needs not (it owns
            # the database, so the schema).
            await clone.execute(text(f"DROP OWNED BY {quoted(template_owner)}"))
    await grant_roles(clone, roles.owner, roles.app, roles.reader)


async def grant_roles(connection: AsyncConnection, owner: str, app: str, reader: str) -> None:
    """The app's and the reader's privileges, as the project grants them (`grant_roles` of
    its migrations module); for a project without one (an earlier release's, run on this
    head's template), as pg-runtime grants them, if it is installed; else none."""
    grant = getattr(project().migrations, "grant_roles", None)
    if grant is None:
        try:
            grant = importlib.import_module("pg_runtime.roles").grant_roles
        except (ImportError, AttributeError):
            return
    await grant(connection, owner, app, reader)
