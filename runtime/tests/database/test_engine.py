"""The app's engine replaces connections the server closed, without a query per checkout,
and honours the libpq parameters of a provider's URL."""

import pytest
from in_process import settings_for
from pg_harness.outages import end_session
from pg_runtime.database_url import to_asyncpg_url
from pg_runtime.engine import create_app_engine
from pg_runtime.migrations.engine import create_migration_engine
from pg_runtime.migrations.long import without_timeouts
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError


async def test_a_connection_the_server_closed_is_replaced_at_checkout(database_url: URL) -> None:
    # One connection, no pre-ping: the next checkout gets the very connection that was ended.
    settings = settings_for(database_url, db_pool_size=1, db_max_overflow=0, db_pool_pre_ping=False)
    engine = create_app_engine(settings, database_url)
    try:
        async with engine.connect() as connection:
            ended = await connection.scalar(text("SELECT pg_backend_pid()"))
        await end_session(database_url, ended)

        async with engine.connect() as connection:
            replacement = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert replacement != ended
    finally:
        await engine.dispose()


PROVIDER_PARAMETERS = (
    "application_name=billing&connect_timeout=3&target_session_attrs=read-write"
    "&options=-c%20search_path%3Dpublic%20-c%20work_mem%3D5MB&channel_binding=prefer"
)


async def test_the_urls_libpq_parameters_reach_the_server(database_url: URL) -> None:
    # Before, asyncpg.connect got them as keyword arguments and every connection failed.
    given = database_url.render_as_string(hide_password=False)
    url = to_asyncpg_url(f"{given}?{PROVIDER_PARAMETERS}")
    settings = settings_for(url)
    engine = create_app_engine(settings, url)
    migrations = create_migration_engine(settings)
    try:
        for each in (engine, migrations):
            async with each.connect() as connection:
                seen = (
                    await connection.execute(
                        text(
                            "SELECT current_setting('application_name'), "
                            "current_setting('search_path'), current_setting('work_mem'), "
                            "current_setting('statement_timeout')"
                        )
                    )
                ).one()
            assert tuple(seen)[:3] == ("billing", "public", "5MB")
        assert seen[3] == "1min"  # the migration engine: MIGRATION_STATEMENT_TIMEOUT
    finally:
        await engine.dispose()
        await migrations.dispose()


async def test_migrations_run_with_timeouts_that_long_revisions_lift(database_url: URL) -> None:
    settings = settings_for(database_url, migration_statement_timeout=0.5)
    engine = create_migration_engine(settings)
    try:
        async with engine.connect() as connection:
            show = text("SELECT current_setting('statement_timeout')")
            bounded = await connection.scalar(show)
            with pytest.raises(DBAPIError, match="statement timeout"):
                await connection.execute(text("SELECT pg_sleep(2)"))
            await connection.rollback()

            def lifted(sync: Connection) -> str:
                with without_timeouts(sync):
                    sync.execute(text("SELECT pg_sleep(0.7)"))  # over the bound: allowed
                    return str(sync.execute(show).scalar_one())

            inside = await connection.run_sync(lifted)
            after = await connection.scalar(show)
    finally:
        await engine.dispose()

    assert (bounded, inside, after) == ("500ms", "0", "500ms")
