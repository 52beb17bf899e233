"""Clients paging through a heavy user's notes do not drain the read pool: an unrelated
read is answered in time, and each page read only the rows it skipped and returned (the
server's own count), on a served app (a real socket, real pools, one worker)."""

import asyncio
import time
from collections import Counter

import anyio
import httpx
import pytest
from pg_harness.served import Served
from pg_runtime.testing import role_env
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.paging import MAX_OFFSET
from tests.api.test_notes_of_a_heavy_user import plant_users as plant_heavy_and_light_users

pytestmark = pytest.mark.slow

HEAVY_CLIENTS = 40
PAGE = 20
# Under DB_POOL_TIMEOUT (10 s), after which a drained pool would refuse it with 503. What
# shows that the heavy pages cost only their own rows is the server's count below; this bound
# holds on a CI machine running a suite beside, and through the tests' PgBouncer, whose own
# small server pool the heavy pages share.
IN_TIME = 9.0


async def rows_read_from_note(database: URL) -> int:
    """Rows of `note` the server has read, by sequential and index scans, in every session
    that has ended (a session's count is in once it ends, or has been idle a while)."""
    engine = create_async_engine(database, poolclass=NullPool)
    others = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            # Sessions whose client has gone may still be ending, their counts not yet in.
            with anyio.fail_after(10):
                while await connection.scalar(others):  # noqa: ASYNC110 (polls the server)
                    await anyio.sleep(0.05)
            await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            read = await connection.scalar(
                text(
                    "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) "
                    "FROM pg_stat_user_tables WHERE relname = 'note'"
                )
            )
    finally:
        await engine.dispose()
    assert isinstance(read, int)
    return read


async def plant_users(database: URL) -> tuple[int, int]:
    """The plan test's heavy and light users, committed and vacuumed: their ids."""
    engine = create_async_engine(database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            heavy, light = await plant_heavy_and_light_users(connection)
            await connection.commit()
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE note"))
    finally:
        await engine.dispose()
    return heavy, light


async def test_40_clients_paging_a_heavy_users_notes_leave_an_unrelated_read_answered(
    fresh_database: URL,
) -> None:
    heavy, light = await plant_users(fresh_database)
    read_before = await rows_read_from_note(fresh_database)
    # As in production: the app's role writes, the reader's reads (the pool under test).
    env = role_env(fresh_database) | {"WORKERS": "1", "ACCESS_LOG": "false"}
    heavy_answers: Counter[int] = Counter()
    stop = asyncio.Event()

    with Served(env) as served:
        limits = httpx.Limits(max_connections=HEAVY_CLIENTS + 1)
        async with httpx.AsyncClient(base_url=served.url, timeout=30, limits=limits) as client:

            async def page_deeply(number: int) -> None:
                offset = MAX_OFFSET - number  # a page of its own: no two alike
                while not stop.is_set():
                    response = await client.get(
                        "/notes",
                        params={"user_id": heavy, "offset": offset, "limit": PAGE},
                    )
                    heavy_answers[response.status_code] += 1

            async def read_unrelated() -> list[tuple[int, float]]:
                await asyncio.sleep(1)  # every heavy client under way
                answers = []
                for _ in range(5):
                    started = time.perf_counter()
                    response = await client.get(f"/users/{light}")
                    answers.append((response.status_code, time.perf_counter() - started))
                    await asyncio.sleep(0.2)
                stop.set()
                return answers

            async with asyncio.TaskGroup() as group:
                for number in range(HEAVY_CLIENTS):
                    group.create_task(page_deeply(number))
                unrelated = group.create_task(read_unrelated())

    # The app has stopped: its sessions have ended, their counts are in.
    rows_read = await rows_read_from_note(fresh_database) - read_before
    assert heavy_answers.keys() == {200}, heavy_answers
    assert heavy_answers[200] >= 2 * HEAVY_CLIENTS  # they ran all along
    slowest = max(seconds for _, seconds in unrelated.result())
    assert [status for status, _ in unrelated.result()] == [200] * 5
    assert slowest < IN_TIME, f"an unrelated read took {slowest:.2f} s under heavy requests"
    # Rows skipped and returned, no more: not the crowd's notes, not the heavy user's others.
    per_page = rows_read / heavy_answers[200]
    assert MAX_OFFSET - HEAVY_CLIENTS <= per_page <= MAX_OFFSET + PAGE, f"{per_page:.0f} rows"
