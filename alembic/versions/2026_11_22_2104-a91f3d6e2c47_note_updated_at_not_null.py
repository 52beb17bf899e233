"""note.updated_at NOT NULL, through a validated CHECK

Revision ID: a91f3d6e2c47
Revises: 5e2b8a0c7d14
Create Date: 2026-11-22 21:04:00

SET NOT NULL alone scans the whole table under ACCESS EXCLUSIVE, blocking reads and writes
for the scan. A CHECK (... IS NOT NULL) added NOT VALID takes its lock for an instant;
VALIDATE scans under a lock that lets reads and writes go on; SET NOT NULL then uses the
validated check instead of scanning (PostgreSQL 12+), and the check is dropped.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a91f3d6e2c47"
down_revision: str | None = "5e2b8a0c7d14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_note_updated_at_not_null"


def upgrade() -> None:
    op.execute(f"ALTER TABLE note ADD CONSTRAINT {CHECK} CHECK (updated_at IS NOT NULL) NOT VALID")
    with op.get_context().autocommit_block():
        op.execute(f"ALTER TABLE note VALIDATE CONSTRAINT {CHECK}")
    op.alter_column("note", "updated_at", nullable=False)
    op.drop_constraint(op.f(CHECK), "note", type_="check")


def downgrade() -> None:
    op.alter_column("note", "updated_at", nullable=True)
