"""Which standby a read goes to, decided from the last poll: no server is needed to say it."""

from collections.abc import AsyncIterator

import pytest
from pg_runtime.standbys import Standby, Standbys
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MAX_LAG = 1000


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    # Never connected: choosing reads only the standbys' polled state.
    engine = create_async_engine("postgresql+asyncpg://u@127.0.0.1:1/none")
    yield engine
    await engine.dispose()


def standbys(engine: AsyncEngine, *states: tuple[str, int, int]) -> Standbys:
    """Standbys polled as (state, replayed position, lag)."""
    return Standbys(
        [
            Standby(f"standby-{n}", engine, engine, state=state, replayed=replayed, lag=lag)  # type: ignore[arg-type]
            for n, (state, replayed, lag) in enumerate(states)
        ],
        primary=engine,
        max_lag=MAX_LAG,
        poll_interval=1,
        retry_after=5,
    )


def chosen(group: Standbys, after: int | None = None, times: int = 4) -> list[str | None]:
    return [getattr(group.choose(after), "name", None) for _ in range(times)]


async def test_reads_take_turns_among_the_standbys_that_serve(engine: AsyncEngine) -> None:
    group = standbys(engine, ("ok", 500, 0), ("lagging", 500, MAX_LAG + 1), ("ok", 500, 10))

    assert sorted(map(str, chosen(group))) == ["standby-0", "standby-0", "standby-2", "standby-2"]


async def test_a_token_is_served_only_by_a_standby_past_it(engine: AsyncEngine) -> None:
    group = standbys(engine, ("ok", 400, 0), ("ok", 600, 0))

    assert chosen(group, after=500) == ["standby-1"] * 4
    assert chosen(group, after=600) == ["standby-1"] * 4
    assert chosen(group, after=601) == [None] * 4


@pytest.mark.parametrize("state", ["unknown", "lagging", "down", "not a standby"])
async def test_a_standby_not_ok_serves_nothing(engine: AsyncEngine, state: str) -> None:
    group = standbys(engine, (state, 500, 0))

    assert chosen(group) == [None] * 4
    assert chosen(group, after=1) == [None] * 4


async def test_a_failed_standby_is_out_until_its_time_has_passed(engine: AsyncEngine) -> None:
    group = standbys(engine, ("ok", 500, 0))
    standby = group.standbys[0]

    group.failed(standby, ConnectionResetError())

    assert (standby.state, standby.reason) == ("down", "ConnectionResetError")
    assert group.choose() is None
    standby.state = "ok"  # a good poll, too early: still out
    assert group.choose() is None
    standby.out_until = 0  # its time has passed
    assert group.choose() is standby
