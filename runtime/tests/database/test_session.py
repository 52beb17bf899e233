"""DatabaseSessionManager: one engine between init() and close(), rollback on errors,
read-only sessions without BEGIN that refuse writes."""

import pytest
from in_process import settings_for
from pg_runtime.sessions import DatabaseSessionManager, ReadOnlySessionError
from probe.models import Probe
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession


async def test_init_twice_is_refused_until_closed(database_url: URL) -> None:
    manager = DatabaseSessionManager()
    manager.init(settings_for(database_url))
    try:
        # A second init would drop the first engine's pool without closing its connections.
        with pytest.raises(RuntimeError, match="called twice"):
            manager.init(settings_for(database_url))
        async with manager.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await manager.close()

    manager.init(settings_for(database_url))
    await manager.close()
    with pytest.raises(RuntimeError, match="has not been called"):
        manager.engine  # noqa: B018


async def add_a_probe_then_fail(manager: DatabaseSessionManager) -> None:
    async with manager.session() as session:
        session.add(Probe(name="rolled back"))
        await session.flush()
        raise ZeroDivisionError


async def test_session_rolls_back_when_the_block_raises(database_url: URL) -> None:
    manager = DatabaseSessionManager()
    manager.init(settings_for(database_url))
    try:
        with pytest.raises(ZeroDivisionError):
            await add_a_probe_then_fail(manager)
        async with manager.session() as session:
            stored = await session.scalar(select(func.count()).where(Probe.name == "rolled back"))
        assert stored == 0
    finally:
        await manager.close()


async def seen_by_the_next_statement(session: AsyncSession) -> str | None:
    """A setting local to the transaction, read back by the next statement."""
    await session.execute(text("SELECT set_config('test.probe', 'set', true)"))
    value: str | None = await session.scalar(text("SELECT current_setting('test.probe', true)"))
    return value


async def test_a_read_only_session_sends_no_begin(database_url: URL) -> None:
    manager = DatabaseSessionManager()
    manager.init(settings_for(database_url))
    try:
        async with manager.session(read_only=True) as session:
            read_only = await seen_by_the_next_statement(session)
        async with manager.session() as session:
            read_write = await seen_by_the_next_statement(session)
    finally:
        await manager.close()
    assert read_only in ("", None), "each statement of a read-only session is its own transaction"
    assert read_write == "set"


async def test_a_read_only_session_refuses_writes_and_stores_nothing(database_url: URL) -> None:
    name = "read only"
    manager = DatabaseSessionManager()
    manager.init(settings_for(database_url))
    try:
        async with manager.session(read_only=True) as session:
            session.add(Probe(name=name))
            with pytest.raises(ReadOnlySessionError):
                await session.flush()
        async with manager.session(read_only=True) as session:
            with pytest.raises(ReadOnlySessionError):
                await session.execute(insert(Probe).values(name=name))
            with pytest.raises(ReadOnlySessionError):
                await session.execute(delete(Probe))
            stored = await session.scalar(select(func.count()).select_from(Probe))
    finally:
        await manager.close()
    assert stored == 0
