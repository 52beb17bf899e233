"""Drift: what the models declare that the migrated schema lacks, or the other way round.

Alembic's own comparison (the machinery of `alembic check`), run on a database the real
migrations built.
"""

from collections.abc import Mapping
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncConnection

from pg_harness.migrations.checks import describe, head_revision


async def drift(
    connection: AsyncConnection, metadata: MetaData, options: Mapping[str, Any]
) -> str | None:
    """None if the models match the schema; else a message naming the head and each difference."""

    def compare(sync: Connection) -> list[Any]:
        context = MigrationContext.configure(sync, opts=dict(options))
        return list(compare_metadata(context, metadata))

    differences = await connection.run_sync(compare)
    if not differences:
        return None
    return (
        f"the models and the migrations up to {describe(head_revision())} disagree; "
        "`make revision m='…'` writes the missing revision (review it), or list a known "
        "false positive in the migrations' comparison options:\n  "
        + "\n  ".join(map(repr, differences))
    )
