"""Stairway: every revision upgrades, downgrades and upgrades again.

One empty database walks from base to head, so the cost grows linearly with the number of
revisions. Each revision is its own test, named by its id: a failure says which one.
"""

from collections.abc import AsyncIterator

import pytest
from alembic.script import Script
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from orm.migrations import downgrade, upgrade
from tests.migrations.conftest import revisions_base_to_head


@pytest.fixture(scope="module")
async def stairway_engine(empty_database: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(empty_database, poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.mark.xdist_group("stairway")
@pytest.mark.parametrize("revision", revisions_base_to_head(), ids=lambda script: script.revision)
async def test_revision_upgrades_downgrades_and_upgrades_again(
    revision: Script, stairway_engine: AsyncEngine
) -> None:
    previous = revision.down_revision or "base"
    assert isinstance(previous, str), f"{revision.revision} merges several revisions"
    async with stairway_engine.connect() as connection:
        # Where the previous step left the database; a no-op when tests run in order.
        await upgrade(connection, previous)
        await upgrade(connection, revision.revision)
        await downgrade(connection, previous)
        await upgrade(connection, revision.revision)
