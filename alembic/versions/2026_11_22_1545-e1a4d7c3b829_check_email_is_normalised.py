"""check that user_account.email is NFKC-normalised

Revision ID: e1a4d7c3b829
Revises: 6d1f0c2a9b3e
Create Date: 2026-11-22 15:45:00

The app stores emails NFKC-normalised and case-folded (api/schemas/fields.py), so that
one address is one row. Case folding cannot live in SQL (PostgreSQL's lower() follows the
server's locale); this check at least refuses a raw-SQL writer's unnormalised twin.
Rows written before normalisation are normalised here (a collision fails the upgrade, for
a person to merge). NOT VALID first, so adding the check takes its lock for an instant;
the scan that validates old rows runs in its own transaction and blocks no writes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e1a4d7c3b829"
down_revision: str | None = "6d1f0c2a9b3e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE user_account ADD CONSTRAINT ck_user_account_email_normalized "
        "CHECK (email IS NFKC NORMALIZED) NOT VALID"
    )
    with op.get_context().autocommit_block():
        op.execute(
            "UPDATE user_account SET email = normalize(email, NFKC) "
            "WHERE email IS NOT NFKC NORMALIZED"
        )
        op.execute("ALTER TABLE user_account VALIDATE CONSTRAINT ck_user_account_email_normalized")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_user_account_email_normalized"), "user_account", type_="check")
