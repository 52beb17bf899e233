"""create probe_item

Revision ID: 0b1e5c0d0002
Revises: 0b1e5c0d0001
Create Date: 2026-01-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0b1e5c0d0002"
down_revision: str | None = "0b1e5c0d0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "probe_item",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("probe_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["probe_id"],
            ["probe.id"],
            name=op.f("fk_probe_item_probe_id_probe"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_item")),
    )
    op.create_index(op.f("ix_probe_item_probe_id"), "probe_item", ["probe_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_probe_item_probe_id"), table_name="probe_item")
    op.drop_table("probe_item")
