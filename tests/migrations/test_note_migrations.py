"""The example notes' migrations, run on rows: a NOT NULL column filled from existing rows
in batches, and an index built CONCURRENTLY that survives a failed build.

The pattern: `database_at(X)` gives a database migrated up to revision X; insert rows as
they looked then, upgrade, and assert on what the migration made of them.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from pg_harness.migrations.at_revision import DatabaseAtRevision

DatabaseAt = Callable[[str], Awaitable[DatabaseAtRevision]]

BEFORE_UPDATED_AT = "c8d2f4a6b1e3"
UPDATED_AT_NOT_NULL = "a91f3d6e2c47"  # after the batched backfill, 5e2b8a0c7d14


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

    # More rows than a batch (BATCH = 1,000), so that the backfill takes several.
    await db.execute(
        "INSERT INTO note (user_id, title, created_at) "
        "SELECT :user_id, 'bulk', :at FROM generate_series(1, 2500)",
        {"user_id": user_id, "at": written[0]},
    )

    await db.upgrade(UPDATED_AT_NOT_NULL)

    rows = await db.execute("SELECT created_at, updated_at FROM note ORDER BY id")
    assert [tuple(row) for row in rows[:2]] == [(at, at) for at in written]
    assert all(row.updated_at == row.created_at for row in rows)
    assert len(rows) == 2502
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
    assert updated_at > written[-1]  # type: ignore[operator]  # rows are untyped: SQL text


async def test_note_updated_at_downgrade_keeps_the_notes(database_at: DatabaseAt) -> None:
    db = await database_at(UPDATED_AT_NOT_NULL)
    [(user_id,)] = await db.execute(
        "INSERT INTO user_account (email, name) VALUES ('ann@example.org', 'Ann') RETURNING id"
    )
    await db.execute("INSERT INTO note (user_id, title) VALUES (:id, 'kept')", {"id": user_id})

    await db.downgrade(BEFORE_UPDATED_AT)

    assert await db.execute("SELECT title FROM note") == [("kept",)]


BEFORE_INDEX = "a91f3d6e2c47"
INDEX = "3c5a8e0f6d19"
INDEX_STATE = (
    "SELECT indisvalid, indisunique FROM pg_index "
    "WHERE indexrelid = to_regclass('ix_note_created_at')"
)


async def test_the_concurrent_index_is_rebuilt_after_a_build_that_failed(
    database_at: DatabaseAt,
) -> None:
    db = await database_at(BEFORE_INDEX)
    [(user_id,)] = await db.execute(
        "INSERT INTO user_account (email, name) VALUES ('ann@example.org', 'Ann') RETURNING id"
    )
    await db.execute(
        "INSERT INTO note (user_id, title, created_at) VALUES (:u, 'a', :t), (:u, 'b', :t)",
        {"u": user_id, "t": datetime(2025, 1, 1, tzinfo=UTC)},
    )
    # A build that fails half-way leaves an INVALID index of that name behind.
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute_alone(
            "CREATE UNIQUE INDEX CONCURRENTLY ix_note_created_at ON note (created_at)"
        )
    assert await db.execute(INDEX_STATE) == [(False, True)]

    await db.upgrade(INDEX)

    assert await db.execute(INDEX_STATE) == [(True, False)]


async def test_a_valid_index_left_without_its_version_stamp_is_kept(
    database_at: DatabaseAt,
) -> None:
    db = await database_at(BEFORE_INDEX)
    # The build finished, then the process died before Alembic stamped the revision.
    await db.execute_alone("CREATE INDEX CONCURRENTLY ix_note_created_at ON note (created_at)")
    before = await db.execute("SELECT to_regclass('ix_note_created_at')::oid")

    await db.upgrade(INDEX)

    assert await db.execute("SELECT to_regclass('ix_note_created_at')::oid") == before
    assert await db.execute("SELECT version_num FROM alembic_version") == [(INDEX,)]


BY_USER_IN_ID_ORDER = "1dfb6a75d0e6"
USER_INDEXES = (
    "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
    "WHERE indrelid = 'note'::regclass AND indkey[0] = "
    "(SELECT attnum FROM pg_attribute WHERE attrelid = 'note'::regclass AND attname = 'user_id') "
    "ORDER BY 1"
)


async def test_note_by_user_index_replaces_the_single_column_one_after_a_failed_build(
    database_at: DatabaseAt,
) -> None:
    db = await database_at(INDEX)
    [(user_id,)] = await db.execute(
        "INSERT INTO user_account (email, name) VALUES ('ann@example.org', 'Ann') RETURNING id"
    )
    await db.execute(
        "INSERT INTO note (user_id, title) VALUES (:u, 'a'), (:u, 'a')", {"u": user_id}
    )
    # A build that fails half-way leaves an INVALID index of that name behind.
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute_alone(
            "CREATE UNIQUE INDEX CONCURRENTLY ix_note_user_id_id ON note (user_id, title)"
        )

    await db.upgrade(BY_USER_IN_ID_ORDER)

    assert await db.execute(USER_INDEXES) == [("ix_note_user_id_id", True)]
    await db.downgrade(INDEX)
    assert await db.execute(USER_INDEXES) == [("ix_note_user_id", True)]
