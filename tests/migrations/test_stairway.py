"""Stairway: every revision upgrades, downgrades without a trace, and upgrades again.

One empty database walks from base to head, so the cost grows linearly with the number of
revisions. Each revision is its own test, named by its id: a failure says which one, and
what its downgrade left behind (tests/migrations/checks.py).
"""

from collections.abc import AsyncIterator

import pytest
from alembic.script import Script
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.migrations.checks import check_revision
from tests.migrations.conftest import revisions_base_to_head


@pytest.fixture(scope="module")
async def stairway_engine(empty_database: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(empty_database, poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.mark.xdist_group("stairway")
@pytest.mark.parametrize("revision", revisions_base_to_head(), ids=lambda script: script.revision)
async def test_revision_upgrades_downgrades_without_a_trace_and_upgrades_again(
    revision: Script, stairway_engine: AsyncEngine
) -> None:
    async with stairway_engine.connect() as connection:
        await check_revision(connection, revision)
