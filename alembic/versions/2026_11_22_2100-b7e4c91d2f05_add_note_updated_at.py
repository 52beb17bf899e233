"""add note.updated_at, backfilled from created_at

Revision ID: b7e4c91d2f05
Revises: 6d1f0c2a9b3e
Create Date: 2026-11-22 21:00:00

The safe order for a NOT NULL column whose value comes from existing rows: add it
nullable, backfill, then set NOT NULL. (A NOT NULL column with a server default would
give every old note the time of the migration instead of its own.) Pure SQL, so it also
works in `alembic upgrade --sql`. tests/migrations/test_data_migrations.py runs it on rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e4c91d2f05"
down_revision: str | None = "6d1f0c2a9b3e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("note", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE note SET updated_at = created_at WHERE updated_at IS NULL")
    op.alter_column("note", "updated_at", nullable=False, server_default=sa.func.now())


def downgrade() -> None:
    op.drop_column("note", "updated_at")
