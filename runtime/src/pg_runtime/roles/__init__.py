"""The database's roles of least privilege, and the privileges each one is given.

- the owner (DIRECT_URL, else DATABASE_URL) owns the schema: migrations run as it;
- the app role (DATABASE_URL) reads and writes rows and nothing else: no DDL, it owns
  nothing, and of alembic_version it only reads;
- the reader (DATABASE_READER_URL) only reads rows: GET requests' reads on the primary.

The owner's default privileges give both roles their share of every table a later
migration creates, so a revision needs no GRANT of its own. docs/roles.md has the same
statements as SQL, for those who create roles by hand.
"""

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pg_runtime.roles.scram import scram_verifier

SCHEMA = "public"
VERSION_TABLE = "alembic_version"
# Every attribute that would let a role do more than its privileges say, turned off.
_LOGIN_ONLY = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str
    reader: str

    @classmethod
    def with_prefix(cls, owner: str, prefix: str) -> "Roles":
        """`owner`, and the app and reader roles named `<prefix>_app`, `<prefix>_reader`."""
        return cls(owner, f"{prefix}_app", f"{prefix}_reader")


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def role_exists(connection: AsyncConnection, name: str) -> bool:
    found = await connection.scalar(
        text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name}
    )
    return found is not None


async def create_login_role(connection: AsyncConnection, name: str, password: str) -> None:
    """A role that can log in with `password` and do nothing its grants do not allow."""
    # exec_driver_sql: a verifier's colons are not bind parameters; a verifier, not the
    # password, so the password reaches neither the server's log nor pg_stat_activity.
    await connection.exec_driver_sql(
        f"CREATE ROLE {quoted(name)} {_LOGIN_ONLY} PASSWORD '{scram_verifier(password)}'"
    )


async def set_password(connection: AsyncConnection, name: str, password: str) -> None:
    await connection.exec_driver_sql(
        f"ALTER ROLE {quoted(name)} PASSWORD '{scram_verifier(password)}'"
    )


def grant_statements(roles: Roles) -> list[str]:
    """The app's and the reader's privileges in the current database, now and for the
    tables and sequences `roles.owner` creates later. Idempotent."""
    owner, app, reader = quoted(roles.owner), quoted(roles.app), quoted(roles.reader)
    schema = quoted(SCHEMA)
    defaults = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT"
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {app}, {reader}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}",
        f"{defaults} SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"{defaults} USAGE ON SEQUENCES TO {app}",
        f"{defaults} SELECT ON TABLES TO {reader}",
    ]


async def grant_privileges(connection: AsyncConnection, roles: Roles) -> None:
    """Run `grant_statements`, then take back what the app must not do to alembic_version
    (the default privileges gave it, if the table was created after them)."""
    for statement in grant_statements(roles):
        await connection.execute(text(statement))
    version_table = await connection.scalar(
        text("SELECT to_regclass(:name)"), {"name": f"{SCHEMA}.{VERSION_TABLE}"}
    )
    if version_table is not None:
        await connection.execute(
            text(
                f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {quoted(SCHEMA)}."
                f"{quoted(VERSION_TABLE)} FROM {quoted(roles.app)}"
            )
        )
    await _close_public_schema(connection)


async def _close_public_schema(connection: AsyncConnection) -> None:
    # Before PostgreSQL 15 every role may CREATE in `public`, the app's and the reader's
    # too. Only the schema's owner can take that back, and its own CREATE comes from owning
    # it; a server where we are not that owner is left as it is (the app's start-up check
    # then names what is wrong).
    may_revoke = await connection.scalar(
        text(
            "SELECT pg_has_role(current_user, nspowner, 'MEMBER') "
            "AND has_schema_privilege('public', :schema, 'CREATE') "
            "FROM pg_namespace WHERE nspname = :schema"
        ),
        {"schema": SCHEMA},
    )
    if may_revoke:
        await connection.execute(text(f"REVOKE CREATE ON SCHEMA {quoted(SCHEMA)} FROM PUBLIC"))


async def grant_roles(connection: AsyncConnection, owner: str, app: str, reader: str) -> None:
    """`grant_privileges` by names: what pg-harness calls on each test database."""
    await grant_privileges(connection, Roles(owner, app, reader))


def version_table_read_only(table: str, schema: str | None) -> str:
    """A statement that takes back every write on the migrations' version table from every
    role but its owner: the owner's default privileges gave them to the app's role when
    the first migration created it. The app reads it (readiness) and nothing more."""
    name = f"{quoted(schema)}.{quoted(table)}" if schema else quoted(table)
    literal = name.replace("'", "''")
    return f"""
DO $$
DECLARE grantee name;
BEGIN
    FOR grantee IN
        SELECT DISTINCT pg_get_userbyid(acl.grantee)
        FROM pg_class, aclexplode(relacl) AS acl
        WHERE pg_class.oid = to_regclass('{literal}') AND acl.grantee <> relowner
          AND acl.grantee <> 0 AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {literal} FROM %I', grantee);
    END LOOP;
END $$"""
