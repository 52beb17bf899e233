"""add note.updated_at, nullable, now() for new rows

Revision ID: b7e4c91d2f05
Revises: c8d2f4a6b1e3
Create Date: 2026-11-22 21:00:00

The first of three steps for a NOT NULL column whose value comes from existing rows, each
safe on a large, busy table: add it nullable (no rewrite, a brief lock), backfill it in
batches (5e2b8a0c7d14), then make it NOT NULL without a long lock (a91f3d6e2c47).

The default is set apart from ADD COLUMN: given there, now() would be stored for every
existing note, as the time of this migration rather than its own.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e4c91d2f05"
down_revision: str | None = "c8d2f4a6b1e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("note", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("note", "updated_at", server_default=sa.func.now())


def downgrade() -> None:
    op.drop_column("note", "updated_at")
