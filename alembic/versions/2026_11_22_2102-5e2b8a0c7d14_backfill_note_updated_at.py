"""backfill note.updated_at from created_at, in batches

Revision ID: 5e2b8a0c7d14
Revises: b7e4c91d2f05
Create Date: 2026-11-22 21:02:00

One UPDATE of the whole table would lock every row it changes until it commits, and
write the table's worth of WAL in one transaction. Batches of BATCH rows, each committed
on its own (outside the migration's transaction), lock a few rows for a moment. The
loop runs as long as rows are left, without the migration's statement timeout
(pg_runtime/migrations/long.py); each batch is quick.
"""

from collections.abc import Sequence

from alembic import op
from pg_runtime.migrations.long import without_timeouts
from sqlalchemy import text

revision: str = "5e2b8a0c7d14"
down_revision: str | None = "b7e4c91d2f05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The batches stop when none is left, which only a live database can tell.
OFFLINE_SQL_UNSUPPORTED = "backfills in batches until no row is left"
BATCH = 1_000
BACKFILL_BATCH = text(
    "UPDATE note SET updated_at = created_at WHERE id IN "
    "(SELECT id FROM note WHERE updated_at IS NULL ORDER BY id LIMIT :batch "
    "FOR UPDATE SKIP LOCKED)"
)


def upgrade() -> None:
    if op.get_context().as_sql:
        return
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        with without_timeouts(bind):
            while bind.execute(BACKFILL_BATCH, {"batch": BATCH}).rowcount:
                pass


def downgrade() -> None:
    pass  # the column keeps its values; b7e4c91d2f05's downgrade drops it
