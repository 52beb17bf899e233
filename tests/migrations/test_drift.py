"""The models and the migrations describe the same schema.

Alembic's own comparison (the machinery of `alembic check`), on this worker's database,
which the real migrations built. A known false positive is silenced in one place:
orm/migrations.py, KNOWN_FALSE_POSITIVES.
"""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import orm.models  # noqa: F401  (registers every table on Base.metadata)
from orm.base import Base
from orm.migrations import COMPARISON_OPTIONS
from tests.migrations.checks import describe, load_history


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts=COMPARISON_OPTIONS)
    return list(compare_metadata(context, Base.metadata))


async def test_models_match_the_migrated_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        drift = await connection.run_sync(differences)

    script, _problems = load_history()
    head = script.get_revision(script.get_current_head())
    assert head is not None
    assert not drift, (
        f"the models and the migrations up to {describe(head)} disagree; "
        "`make revision m='…'` writes the missing revision (review it), or list a known "
        "false positive in orm/migrations.py KNOWN_FALSE_POSITIVES:\n  "
        + "\n  ".join(map(repr, drift))
    )
