"""Alembic's environment: async migrations over asyncpg.

Three ways in:
- the `alembic` command line: connects to DIRECT_URL, or else DATABASE_URL
  (app/settings.py), with its own loop;
- code that already runs an event loop (the tests, a start-up hook): hands its connection
  in through orm.migrations.MIGRATION_CALL, and we use it as it is;
- `alembic upgrade --sql`: writes the SQL instead of running it.

The first two hold the migration lock for the whole run (orm/migration_lock.py),
so instances that migrate at once take turns. `-x migration_lock=off` runs without it:
only the test that shows why the lock is needed uses that.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

import orm.models  # noqa: F401  (registers every table on Base.metadata)
from app.settings import InvalidSettingsError, Settings, load_settings
from orm.base import Base
from orm.engine import create_migration_engine
from orm.migration_lock import MigrationLockTimeoutError, migration_lock
from orm.migrations import COMPARISON_OPTIONS, MIGRATION_CALL

config = context.config
target_metadata = Base.metadata


def settings() -> Settings:
    try:
        loaded = load_settings()
    except InvalidSettingsError as exc:
        raise CommandError(str(exc)) from None
    if loaded.migration_url is None:
        raise CommandError(
            "DATABASE_URL is not set: `make migrate` / `make revision` run alembic against "
            "the embedded server, or set DATABASE_URL (or DIRECT_URL) to your server's URL"
        )
    return loaded


def configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        **COMPARISON_OPTIONS,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]  # connection= or url= and their options
    )


def run_migrations_offline() -> None:
    # No connection: only the dialect matters, so an unset DATABASE_URL is fine here.
    configure(url="postgresql+asyncpg://", literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection, lock_timeout: float, wait_timeout: float | None) -> None:
    if context.get_x_argument(as_dictionary=True).get("migration_lock") == "off":
        run_migrations_unlocked(connection)
        return
    try:
        with migration_lock(connection, lock_timeout, wait_timeout):
            run_migrations_unlocked(connection)
    except MigrationLockTimeoutError as exc:
        raise CommandError(str(exc)) from None
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise CommandError(
            f"a migration waited more than {lock_timeout:g} s for a lock on a table in "
            "use (MIGRATION_LOCK_TIMEOUT), and was rolled back rather than hold up the "
            "queries queued behind it; run it again when the table is quieter"
        ) from None


def run_migrations_unlocked(connection: Connection) -> None:
    configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_on_own_connection(settings: Settings) -> None:
    engine = create_migration_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(
                run_migrations,
                settings.migration_lock_timeout,
                settings.migration_wait_timeout or None,
            )
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        run_migrations_offline()
        return
    given = MIGRATION_CALL.get()
    if given is not None:
        # Called from code: its logging is its own business, and its loop is running.
        run_migrations(given.connection, given.lock_timeout, given.wait_timeout)
        return
    if config.config_file_name is not None:
        # disable_existing_loggers=False: fileConfig would otherwise silence every logger
        # created before it, the application's included.
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_migrations_on_own_connection(settings()))
    else:
        raise CommandError(
            "called inside a running event loop without a connection: use "
            "orm.migrations.upgrade(connection) so the migration runs on that loop"
        )


main()
