"""A page of one user's notes costs its own rows, whether that user, or another, has a few
notes or 300,000: the plans of the app's own query, planted in a transaction rolled back.

Planted and planned as the schema's owner: ANALYZE is the owner's (the app's role may not
run it, and the plans need statistics that know the heavy user); a plan does not depend
on the role that asks for it.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from api.paging import MAX_OFFSET
from api.routers.notes import notes_page

HEAVY_NOTES = 300_000
LIGHT_NOTES = 10
# Enough that a page which skips them shows it, few enough to plant in a second.
OTHER_NOTES = 30_000
PAGE = 20
# A page read in order and stopped: the page's index entries and rows, nothing else.
BOUNDED = ["Limit", "Index Scan using ix_note_user_id_id"]


@pytest.fixture
async def as_owner(database_url: URL) -> AsyncIterator[AsyncConnection]:
    """This worker's database as the schema's owner, in a transaction rolled back after."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            yield connection  # closed uncommitted: rolled back
    finally:
        await engine.dispose()


async def plant_users(connection: AsyncConnection) -> tuple[int, int]:
    """A heavy user and a light one, their ids. Numbered before the heavy user's notes, half
    the light user's and a crowd's (a user of OTHER_NOTES); after them, the light user's
    other half. Statistics that know it."""
    users = await connection.execute(
        text(
            "INSERT INTO user_account (email, name) SELECT name || '@planted.example.org', name "
            "FROM unnest(ARRAY['heavy', 'light', 'crowd']) AS name RETURNING id"
        )
    )
    heavy, light, crowd = users.scalars().all()
    plant = text(
        "INSERT INTO note (user_id, title) SELECT :user_id, 'note ' || n "
        "FROM generate_series(1, :count) AS n"
    )
    for user_id, count in (
        (crowd, OTHER_NOTES),
        (light, LIGHT_NOTES // 2),
        (heavy, HEAVY_NOTES),
        (light, LIGHT_NOTES // 2),
    ):
        await connection.execute(plant, {"user_id": user_id, "count": count})
    await connection.execute(text("ANALYZE note"))
    return heavy, light


async def plan(connection: AsyncConnection, user_id: int, offset: int, mode: str) -> list[str]:
    """The plan's nodes, outermost first, of the app's query for this page, prepared as the
    driver prepares it; `mode`: PostgreSQL's `plan_cache_mode`, `force_custom_plan` (the
    first executions of a prepared statement) or `force_generic_plan` (later ones may be)."""
    statement, parameters = notes_page(user_id, PAGE, offset)
    compiled = statement.compile(dialect=connection.dialect)
    values = ", ".join(literal(parameters[name]) for name in compiled.positiontup or ())
    await connection.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
    await connection.exec_driver_sql(f"PREPARE notes_page AS {compiled}")
    try:
        explained = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE notes_page({values})"
        )
        [tree] = explained.scalar_one()
    finally:
        await connection.exec_driver_sql("DEALLOCATE notes_page")
    return list(nodes(tree["Plan"]))


def literal(value: object) -> str:
    return f"ARRAY{value}" if isinstance(value, list) else str(value)


def nodes(node: dict[str, Any]) -> Any:
    index = f" using {node['Index Name']}" if "Index Name" in node else ""
    # A filter on a scan: rows read and thrown away, as many as the table holds.
    filtered = " filtered" if "Filter" in node else ""
    yield f"{node['Node Type']}{index}{filtered}"
    for child in node.get("Plans", []):
        yield from nodes(child)


async def test_a_page_of_a_users_notes_reads_its_own_rows_whoever_holds_300000_notes(
    as_owner: AsyncConnection,
) -> None:
    heavy, light = await plant_users(as_owner)

    plans = {
        (who, offset, mode): await plan(as_owner, user_id, offset, mode)
        for who, user_id in (("heavy", heavy), ("light", light))
        for offset in (0, MAX_OFFSET)
        for mode in ("force_custom_plan", "force_generic_plan")
    }

    # No Sort (of every note of the user) and no filtered walk of pk_note (every note).
    assert plans == dict.fromkeys(plans, BOUNDED)
