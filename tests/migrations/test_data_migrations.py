"""Migrations run on rows, not only on an empty schema.

The pattern: `database_at(X)` gives a database migrated up to revision X; insert rows as
they looked then, upgrade, and assert on what the migration made of them.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from tests.migrations.conftest import DatabaseAtRevision

DatabaseAt = Callable[[str], Awaitable[DatabaseAtRevision]]

BEFORE_UPDATED_AT = "6d1f0c2a9b3e"
ADD_UPDATED_AT = "b7e4c91d2f05"


async def test_note_updated_at_is_backfilled_from_created_at(database_at: DatabaseAt) -> None:
    db = await database_at(BEFORE_UPDATED_AT)
    written = [datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 6, 30, 12, 0, tzinfo=UTC)]
    [(user_id,)] = await db.execute(
        "INSERT INTO user_account (email, name) VALUES ('ann@example.org', 'Ann') RETURNING id"
    )
    await db.execute(
        "INSERT INTO note (user_id, title, created_at) VALUES (:user_id, :title, :created_at)",
        [
            {"user_id": user_id, "title": f"note {i}", "created_at": at}
            for i, at in enumerate(written)
        ],
    )

    await db.upgrade(ADD_UPDATED_AT)

    rows = await db.execute("SELECT created_at, updated_at FROM note ORDER BY id")
    assert [tuple(row) for row in rows] == [(at, at) for at in written]
    nullable = await db.execute(
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_name = 'note' AND column_name = 'updated_at'"
    )
    assert nullable == [("NO",)]
    # New rows get a value from the server default, without naming the column.
    [(updated_at,)] = await db.execute(
        "INSERT INTO note (user_id, title) VALUES (:user_id, 'new') RETURNING updated_at",
        {"user_id": user_id},
    )
    assert updated_at > written[-1]


async def test_note_updated_at_downgrade_keeps_the_notes(database_at: DatabaseAt) -> None:
    db = await database_at(ADD_UPDATED_AT)
    [(user_id,)] = await db.execute(
        "INSERT INTO user_account (email, name) VALUES ('ann@example.org', 'Ann') RETURNING id"
    )
    await db.execute("INSERT INTO note (user_id, title) VALUES (:id, 'kept')", {"id": user_id})

    await db.downgrade(BEFORE_UPDATED_AT)

    assert await db.execute("SELECT title FROM note") == [("kept",)]


BEFORE_EMAIL_CHECK = "3c5a8e0f6d19"
EMAIL_CHECK = "e1a4d7c3b829"


async def test_emails_stored_before_the_check_are_normalised(database_at: DatabaseAt) -> None:
    db = await database_at(BEFORE_EMAIL_CHECK)
    # Written by the old code, which only lower-cased: a full-width letter stayed.
    await db.execute(
        "INSERT INTO user_account (email, name) VALUES (:old, 'Ann'), ('bob@example.org', 'Bob')",
        {"old": "\uff41nn@example.org"},
    )

    await db.upgrade(EMAIL_CHECK)

    emails = await db.execute("SELECT email FROM user_account ORDER BY id")
    assert emails == [("ann@example.org",), ("bob@example.org",)]
    validated = await db.execute(
        "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_user_account_email_normalized'"
    )
    assert validated == [(True,)]


async def test_raw_sql_cannot_store_an_unnormalised_email(database_at: DatabaseAt) -> None:
    db = await database_at(EMAIL_CHECK)

    with pytest.raises(IntegrityError, match="ck_user_account_email_normalized"):
        await db.execute(
            "INSERT INTO user_account (email, name) VALUES (:email, 'Ann')",
            {"email": "\uff41nn@example.org"},
        )
