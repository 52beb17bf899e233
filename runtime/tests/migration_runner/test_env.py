"""An env.py on `run_env` (the probe's) from code: the caller's loop and connection, and the
caller's logging."""

import logging
import shutil
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.util import CommandError
from pg_runtime.migrations import MIGRATION_CALL
from probe.migrations import PROBE_ROOT, alembic_config, downgrade, migrations, upgrade
from probe.models import Base
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


async def test_migrations_run_on_the_callers_connection_inside_its_loop(
    fresh_database: URL,
) -> None:
    engine = create_async_engine(fresh_database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await downgrade(connection, "base")
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            assert tables == ["alembic_version"]
            await connection.rollback()  # end the inspection's transaction

            await upgrade(connection)
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            assert set(Base.metadata.tables) <= set(tables)
    finally:
        await engine.dispose()
    assert MIGRATION_CALL.get() is None  # set for one command only


async def test_a_connection_inside_a_transaction_is_refused(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # autobegins

        with pytest.raises(RuntimeError, match="no transaction open"):
            await upgrade(connection)


async def test_command_inside_a_running_loop_without_a_connection_is_refused() -> None:
    with pytest.raises(CommandError, match="running event loop"):
        command.upgrade(alembic_config(), "head")


async def test_command_line_logging_leaves_existing_loggers_enabled(
    fresh_database: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_logger = logging.getLogger("app.some_module")
    monkeypatch.setenv("DATABASE_URL", fresh_database.render_as_string(hide_password=False))
    errors: list[BaseException] = []

    def run_like_the_cli() -> None:
        # No loop and no connection given: env.py configures logging from alembic.ini and
        # runs its own loop, exactly as `alembic upgrade head` does.
        try:
            command.upgrade(alembic_config(), "head")
        except BaseException as exc:
            errors.append(exc)

    root_handlers = list(logging.getLogger().handlers)
    try:
        # A thread with no event loop, as the command line has.
        await anyio.to_thread.run_sync(run_like_the_cli)
    finally:
        for handler in set(logging.getLogger().handlers) - set(root_handlers):
            logging.getLogger().removeHandler(handler)

    assert errors == []
    assert app_logger.disabled is False


async def test_a_database_at_a_revision_the_code_lacks_is_explained(
    fresh_database: URL, tmp_path: Path
) -> None:
    # The history without its head, as after "Make it yours" removed revisions that the
    # development database had been migrated through.
    shutil.copytree(PROBE_ROOT / "alembic", tmp_path / "alembic")
    head = migrations.code_head()
    [head_file] = (tmp_path / "alembic" / "versions").glob(f"*{head}*.py")
    head_file.unlink()
    config = alembic_config()
    config.set_main_option("script_location", str(tmp_path / "alembic"))
    engine = create_async_engine(fresh_database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            with pytest.raises(CommandError) as refused:
                await upgrade(connection, config=config)
    finally:
        await engine.dispose()

    assert f"Can't locate revision identified by '{head}'" in str(refused.value)
    assert "`make reset-db` empties it" in str(refused.value)
    assert "alembic stamp --purge" in str(refused.value)
