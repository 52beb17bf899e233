"""index note.created_at, concurrently

Revision ID: 3c5a8e0f6d19
Revises: a91f3d6e2c47
Create Date: 2026-11-22 21:10:00

CREATE INDEX CONCURRENTLY does not block writes to a busy table, but it cannot run inside
a transaction: autocommit_block() commits what this run did so far and runs the statement
outside one. It waits for every transaction older than itself, so it runs without the
migration's statement and lock timeouts (pg_runtime/migrations/long.py).

Re-runnable: a build that failed or was killed leaves an INVALID index, which is dropped
and built again; a valid index whose version stamp was never written is kept.
"""

from collections.abc import Sequence

from alembic import op
from pg_runtime.migrations.long import without_timeouts
from sqlalchemy import text

revision: str = "3c5a8e0f6d19"
down_revision: str | None = "a91f3d6e2c47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_note_created_at"


def upgrade() -> None:
    context = op.get_context()
    with context.autocommit_block():
        if context.as_sql:  # offline SQL: nothing to inspect, no session to set
            op.create_index(
                INDEX, "note", ["created_at"], postgresql_concurrently=True, if_not_exists=True
            )
            return
        bind = op.get_bind()
        valid = bind.scalar(
            text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": INDEX},
        )
        if valid is False:  # the leftover of a build that did not finish
            op.drop_index(INDEX, table_name="note", postgresql_concurrently=True)
        with without_timeouts(bind):
            op.create_index(
                INDEX, "note", ["created_at"], postgresql_concurrently=True, if_not_exists=True
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="note", postgresql_concurrently=True, if_exists=True)
