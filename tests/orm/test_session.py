"""DatabaseSessionManager: one engine between init() and close(), rollback on errors."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL

from orm.models import User
from orm.session import DatabaseSessionManager
from tests.conftest import settings_for


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


async def add_a_user_then_fail(manager: DatabaseSessionManager) -> None:
    async with manager.session() as session:
        session.add(User(email="rolled.back@example.org", name="Ann"))
        await session.flush()
        raise ZeroDivisionError


async def test_session_rolls_back_when_the_block_raises(database_url: URL) -> None:
    manager = DatabaseSessionManager()
    manager.init(settings_for(database_url))
    try:
        with pytest.raises(ZeroDivisionError):
            await add_a_user_then_fail(manager)
        async with manager.session() as session:
            stored = await session.scalar(
                select(func.count()).where(User.email == "rolled.back@example.org")
            )
        assert stored == 0
    finally:
        await manager.close()
