"""index note.created_at, concurrently

Revision ID: 3c5a8e0f6d19
Revises: b7e4c91d2f05
Create Date: 2026-11-22 21:10:00

CREATE INDEX CONCURRENTLY does not block writes to a busy table, but it cannot run inside
a transaction: autocommit_block() commits what this run did so far and runs the statement
outside one. If it fails it leaves an INVALID index behind: drop it and run again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c5a8e0f6d19"
down_revision: str | None = "b7e4c91d2f05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_note_created_at", "note", ["created_at"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_note_created_at", table_name="note", postgresql_concurrently=True)
