"""The connection `alembic upgrade` runs on, from code or the command line.

Apart from the requests' engines (pg_runtime.engine): a migration needs no pool, metrics
or traces, and `alembic upgrade` imports none of them.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from pg_runtime.database_url import driver_options, milliseconds
from pg_runtime.settings import RuntimeSettings


def create_migration_engine(settings: RuntimeSettings) -> AsyncEngine:
    """One connection to DIRECT_URL (or DATABASE_URL) for `alembic upgrade`, from code or CLI."""
    if settings.migration_url is None:
        raise RuntimeError("DATABASE_URL is not set: there is no database to migrate")
    driver = driver_options(settings.migration_url)
    connect_args: dict[str, Any] = {"timeout": settings.db_connect_timeout, **driver.connect_args}
    server_settings = dict(driver.server_settings)
    if settings.migration_statement_timeout:
        server_settings["statement_timeout"] = milliseconds(settings.migration_statement_timeout)
    if server_settings:
        connect_args["server_settings"] = server_settings
    # NullPool: a one-off command has no use for a pool, and leaves no connection behind.
    return create_async_engine(driver.url, poolclass=NullPool, connect_args=connect_args)
