"""Stairway: every revision upgrades, downgrades without a trace, and upgrades again.

One empty database walks from base to head, each revision its own test named by its id;
a failure says which one, and what its downgrade left behind (pg_harness.migrations).
"""

import pytest
from alembic.script import Script
from pg_harness.migrations.checks import check_revision, revisions
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


@pytest.mark.xdist_group("stairway")
@pytest.mark.parametrize("revision", revisions(), ids=lambda script: script.revision)
async def test_revision_upgrades_downgrades_without_a_trace_and_upgrades_again(
    revision: Script, empty_database: URL
) -> None:
    engine = create_async_engine(empty_database, poolclass=NullPool)
    async with engine.connect() as connection:
        await check_revision(connection, revision)
    await engine.dispose()
