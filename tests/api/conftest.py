"""Fixtures the API tests share."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orm.models import User
from tests.factories import UserFactory


# Committed, which here only releases a savepoint: a row that was only flushed would share
# the savepoint the app rolls back on a 404, 409 or 422, and vanish with it. Ann's email and
# name are given: tests send its case-folded twins and check that both stay as they were.
@pytest.fixture
async def user(session: AsyncSession) -> User:
    user = UserFactory.build(email="ann@example.org", name="Ann")
    session.add(user)
    await session.commit()
    return user


@pytest.fixture
async def other_user(session: AsyncSession) -> User:
    other_user = UserFactory.build(email="bob@example.org")
    session.add(other_user)
    await session.commit()
    return other_user
