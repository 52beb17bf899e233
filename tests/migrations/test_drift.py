"""The models and the migrations describe the same schema (what `alembic check` checks).

A known false positive is silenced in one place: orm/migrations.py, KNOWN_FALSE_POSITIVES.
"""

from pg_harness.migrations.drift import drift
from sqlalchemy.ext.asyncio import AsyncConnection

import orm.models  # noqa: F401  (registers every table on Base.metadata)
from orm.base import Base
from orm.migrations import migrations


async def test_models_match_the_migrated_schema(connection: AsyncConnection) -> None:
    problem = await drift(connection, Base.metadata, migrations.comparison_options)

    assert problem is None, problem
