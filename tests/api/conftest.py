"""Fixtures the API tests share."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orm.models import User


# Committed, which here only releases a savepoint: a row that was only flushed would share
# the savepoint the app rolls back on a 404, 409 or 422, and vanish with it.
@pytest.fixture
async def user(session: AsyncSession) -> User:
    user = User(email="ann@example.org", name="Ann")
    session.add(user)
    await session.commit()
    return user
