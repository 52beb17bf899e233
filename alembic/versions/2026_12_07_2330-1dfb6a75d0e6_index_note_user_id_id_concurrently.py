"""index note (user_id, id), concurrently, in place of note (user_id)

Revision ID: 1dfb6a75d0e6
Revises: 3c5a8e0f6d19
Create Date: 2026-12-07 23:30:00

A user's notes are listed in id order (`GET /notes?user_id=`). With an index on user_id
alone the server either walks pk_note and skips every other user's notes, or fetches all of
this user's notes and sorts them: either way a page costs what the table or the user holds.
On (user_id, id) it reads the page's rows in order and stops, whatever either holds. The
index on user_id alone is then redundant (the new one's leading column serves the foreign
key's ON DELETE CASCADE as well) and only costs writes: it goes, after its replacement is
built.

Built and dropped CONCURRENTLY, as 3c5a8e0f6d19 builds ix_note_created_at: outside the
migration's transaction, without its timeouts (pg_runtime/migrations/long.py), an INVALID
leftover of a build that did not finish dropped and built again.
"""

from collections.abc import Sequence

from alembic import op
from pg_runtime.migrations.long import without_timeouts
from sqlalchemy import text

revision: str = "1dfb6a75d0e6"
down_revision: str | None = "3c5a8e0f6d19"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BY_USER_IN_ID_ORDER = ("ix_note_user_id_id", ["user_id", "id"])
BY_USER = ("ix_note_user_id", ["user_id"])


def upgrade() -> None:
    _replace(old=BY_USER, new=BY_USER_IN_ID_ORDER)


def downgrade() -> None:
    _replace(old=BY_USER_IN_ID_ORDER, new=BY_USER)


def _replace(old: tuple[str, list[str]], new: tuple[str, list[str]]) -> None:
    """Build `new` concurrently, then drop `old` concurrently: the table keeps an index
    on user_id throughout, and neither step blocks its writes."""
    (old_name, _), (new_name, new_columns) = old, new
    context = op.get_context()
    with context.autocommit_block():
        if context.as_sql:  # offline SQL: nothing to inspect, no session to set
            _create(new_name, new_columns)
            _drop(old_name)
            return
        bind = op.get_bind()
        valid = bind.scalar(
            text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": new_name},
        )
        with without_timeouts(bind):
            if valid is False:  # the leftover of a build that did not finish
                _drop(new_name)
            _create(new_name, new_columns)
            _drop(old_name)


def _create(name: str, columns: list[str]) -> None:
    op.create_index(name, "note", columns, postgresql_concurrently=True, if_not_exists=True)


def _drop(name: str) -> None:
    op.drop_index(name, table_name="note", postgresql_concurrently=True, if_exists=True)
