"""Start-up's check that the app's roles can do no more than their job: the app role
(DATABASE_URL) no DDL, the reader (DATABASE_READER_URL) no writes either.

Production refuses a role that can do more (unless DB_ROLE_CHECK=warn); development warns.
One query per pool, at start-up only: requests pay nothing.
"""

import logging

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from pg_runtime.engine import create_poll_engine
from pg_runtime.failures import DatabaseNoAnswerError, DatabaseUnavailableError
from pg_runtime.settings import InvalidSettingsError, RuntimeSettings

logger = logging.getLogger(__name__)

# What the connected role may do beyond reading and writing rows, in this database.
_POWERS = text(
    """
    WITH user_schema AS (
        SELECT oid, nspowner FROM pg_namespace
        WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
    )
    SELECT
        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
        EXISTS (
            SELECT FROM user_schema
            WHERE pg_has_role(nspowner, 'USAGE') OR has_schema_privilege(oid, 'CREATE')
        )
        OR EXISTS (
            SELECT FROM pg_class JOIN user_schema s ON s.oid = relnamespace
            WHERE pg_has_role(relowner, 'USAGE')
        )
        OR has_database_privilege(current_database(), 'CREATE') AS changes_schema,
        EXISTS (
            SELECT FROM pg_class c JOIN user_schema s ON s.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p')
              AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
        ) AS writes
    """
)

FIX = (
    "give it a role of least privilege: `make roles` (python -m pg_runtime.roles, "
    "docs/roles.md); DB_ROLE_CHECK=warn starts anyway"
)


async def role_problem(settings: RuntimeSettings, url: URL, reads_only: bool) -> str | None:
    """What the role `url` logs in as can do that it should not, or None."""
    # A connection of its own, bounded by DB_CONNECT_TIMEOUT, out of the requests' pools
    # and their metrics: the check is not a request's work.
    engine = create_poll_engine(settings, url)
    try:
        async with engine.connect() as connection:
            powers = (await connection.execute(_POWERS)).one()
    finally:
        await engine.dispose()
    if powers.superuser:
        return "is a superuser"
    if powers.changes_schema:
        return "owns the schema or may create in it (DDL)"
    if reads_only and powers.writes:
        return "may write rows"
    return None


async def check_roles(settings: RuntimeSettings) -> None:
    """Refuse (production) or warn about a role that can do more than its job.

    A server unreachable now is not a reason to refuse: the check is skipped with a line
    saying so, and the app starts, its readiness probe answering 503 meanwhile.
    """
    if settings.database_url is None:
        return
    checks = [("DATABASE_URL", settings.database_url, False)]
    if settings.database_reader_url is not None:
        checks.append(("DATABASE_READER_URL", settings.database_reader_url, True))
    elif settings.environment == "production":
        logger.warning(
            "DATABASE_READER_URL is not set: GET requests read as DATABASE_URL's role, kept "
            "read-only by a default a handler could undo (docs/roles.md)"
        )
    for setting, checked, reads_only in checks:
        try:
            problem = await role_problem(settings, checked, reads_only)
        except (DatabaseUnavailableError, DatabaseNoAnswerError, OSError, DBAPIError) as error:
            sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or "-"
            logger.warning(
                "could not check %s's role: %s (SQLSTATE %s)",
                setting,
                type(error).__name__,
                sqlstate,
            )
            continue
        if problem is None:
            continue
        message = f"{setting}'s role {problem}: {FIX}"
        if settings.environment == "production" and settings.db_role_check == "refuse":
            raise InvalidSettingsError(message)
        logger.warning("%s", message)
