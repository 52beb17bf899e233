"""Migrations run on rows, not only on an empty schema.

The pattern: `database_at(X)` gives a database migrated up to revision X; insert rows as
they looked then, upgrade, and assert on what the migration made of them.
"""

from collections.abc import Awaitable, Callable

import pytest
from pg_harness.migrations.at_revision import DatabaseAtRevision
from sqlalchemy.exc import IntegrityError

DatabaseAt = Callable[[str], Awaitable[DatabaseAtRevision]]

BEFORE_EMAIL_CHECK = "6d1f0c2a9b3e"
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
