"""The body of a project's `alembic/env.py`: async migrations over asyncpg.

Three ways in:
- the `alembic` command line: connects to DIRECT_URL, or else DATABASE_URL, with its
  own loop;
- code that already runs an event loop (the tests, a start-up hook): hands its connection
  in through `MIGRATION_CALL` (`Migrations.upgrade`), and it is used as it is;
- `alembic upgrade --sql`: writes the SQL instead of running it.

The first two hold the migration lock for the whole run (pg_runtime.migrations.lock),
so instances that migrate at once take turns. `-x migration_lock=off` runs without it:
only the test that shows why the lock is needed uses that.
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData
from sqlalchemy.exc import DBAPIError

from pg_runtime.migrations import MIGRATION_CALL, Migrations
from pg_runtime.migrations.engine import create_migration_engine
from pg_runtime.migrations.lock import MigrationLockTimeoutError, migration_lock
from pg_runtime.roles import version_table_read_only
from pg_runtime.settings import InvalidSettingsError, RuntimeSettings


def run_env(
    metadata: MetaData,
    migrations: Migrations,
    load_settings: Callable[[], RuntimeSettings],
) -> None:
    """Run the command Alembic is executing `env.py` for, one of the three ways above."""

    def configure(**kwargs: Any) -> None:
        context.configure(target_metadata=metadata, **migrations.comparison_options, **kwargs)

    def run_unlocked(connection: Connection) -> None:
        configure(connection=connection)
        with context.begin_transaction(), _unknown_revision_explained():
            context.run_migrations()
            migration = context.get_context()
            table, schema = migration.version_table, migration.version_table_schema
            connection.exec_driver_sql(version_table_read_only(table, schema))

    def run(connection: Connection, lock_timeout: float, wait_timeout: float | None) -> None:
        if context.get_x_argument(as_dictionary=True).get("migration_lock") == "off":
            run_unlocked(connection)
            return
        try:
            with migration_lock(connection, lock_timeout, wait_timeout):
                run_unlocked(connection)
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

    async def run_on_own_connection(settings: RuntimeSettings) -> None:
        engine = create_migration_engine(settings)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(
                    run,
                    settings.migration_lock_timeout,
                    settings.migration_wait_timeout or None,
                )
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        # No connection: only the dialect matters, so an unset DATABASE_URL is fine here.
        configure(
            url="postgresql+asyncpg://", literal_binds=True, dialect_opts={"paramstyle": "named"}
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    given = MIGRATION_CALL.get()
    if given is not None:
        # Called from code: its logging is its own business, and its loop is running.
        run(given.connection, given.lock_timeout, given.wait_timeout)
        return
    if context.config.config_file_name is not None:
        # disable_existing_loggers=False: fileConfig would otherwise silence every logger
        # created before it, the application's included.
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_on_own_connection(_settings(load_settings)))
    else:
        raise CommandError(
            "called inside a running event loop without a connection: use "
            "Migrations.upgrade(connection) so the migration runs on that loop"
        )


@contextmanager
def _unknown_revision_explained() -> Iterator[None]:
    try:
        yield
    except (CommandError, RevisionError) as exc:
        if "Can't locate revision" not in str(exc):
            raise
        raise CommandError(
            f"{exc}: the database is at a revision that this code's history no longer has "
            "(removed, or rewritten). The development database of `make run`: `make reset-db` "
            "empties it. Another database: bring the revision's file back, or, once its "
            "schema matches a revision you have, `alembic stamp --purge <that revision>`"
        ) from None


def _settings(load_settings: Callable[[], RuntimeSettings]) -> RuntimeSettings:
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
