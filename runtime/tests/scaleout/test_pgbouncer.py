"""Through PgBouncer in transaction mode, DB_BEHIND_PGBOUNCER is what keeps queries right.

Many clients share two server connections, so consecutive transactions of one client
land on different server connections. With asyncpg's default prepared statements that
fails ("prepared statement ... does not exist"), or runs another client's statement of
the same name; with the setting on, every statement is prepared inside the transaction
that runs it. PgBouncer 1.21+ with max_prepared_statements tracks statements itself (the
harness sets it where the version allows): there the caches may stay on
(DB_PGBOUNCER_PREPARED_STATEMENTS), and nothing goes astray even without the setting.
"""

import collections

import anyio
import pytest
from pg_harness.pgbouncer import PgBouncer
from pg_runtime.engine import create_app_engine
from probe.models import Probe, ProbeItem
from probe.settings import ProbeSettings
from sqlalchemy import func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

# Real processes and servers: a proof of the runtime's claims, run by `make check-runtime`.
pytestmark = pytest.mark.slow

CLIENTS = 8
TRANSACTIONS_PER_CLIENT = 75
PROBES = 20


async def seed(database_url: URL) -> dict[int, str]:
    """PROBES probes, stored directly; their names by id."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    async with engine.begin() as connection:
        rows = await connection.execute(
            insert(Probe).returning(Probe.id, Probe.name),
            [{"name": f"probe {i}"} for i in range(PROBES)],
        )
        names = {row.id: row.name for row in rows}
    await engine.dispose()
    return names


async def run_transactions(
    url: URL, behind_pgbouncer: bool, names: dict[int, str], prepared_statements: bool = False
) -> collections.Counter[str]:
    """Outcomes of CLIENTS x TRANSACTIONS_PER_CLIENT ORM transactions, several statements each."""
    # Timeouts off: they are startup parameters on a direct connection, which PgBouncer
    # refuses at once; this test is about what prepared statements do.
    settings = ProbeSettings(
        database_url=url,
        db_behind_pgbouncer=behind_pgbouncer,
        db_pgbouncer_prepared_statements=prepared_statements,
        direct_url=url,  # not used here; PgBouncer mode requires one
        db_statement_timeout=0,
        db_idle_in_transaction_timeout=0,
        db_pool_size=CLIENTS,
        _env_file=None,
    )
    engine = create_app_engine(settings, url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    outcomes: collections.Counter[str] = collections.Counter()

    async def client(number: int) -> None:
        for step in range(TRANSACTIONS_PER_CLIENT):
            probe_id = list(names)[(number + step) % len(names)]
            try:
                async with sessions() as session, session.begin():
                    # Statements of different shapes, in an order that differs per client,
                    # so that the same statement name means different SQL on each.
                    queries = [
                        select(Probe.name).where(Probe.id == probe_id),
                        select(func.count())
                        .select_from(ProbeItem)
                        .where(ProbeItem.probe_id == probe_id),
                        select(Probe.name).where(
                            Probe.id == probe_id, Probe.created_at.isnot(None)
                        ),
                    ]
                    shift = (number + step) % len(queries)
                    results = [
                        await session.scalar(query) for query in queries[shift:] + queries[:shift]
                    ]
                expected = sorted([names[probe_id], names[probe_id], 0], key=str)
                outcomes["ok" if sorted(results, key=str) == expected else "wrong result"] += 1
            except Exception as exc:
                outcomes[_kind(exc)] += 1

    try:
        async with anyio.create_task_group() as tasks:
            for number in range(CLIENTS):
                tasks.start_soon(client, number)
    finally:
        await engine.dispose()
    return outcomes


def _kind(exc: Exception) -> str:
    message = str(exc)
    if "prepared statement" in message:
        return "prepared statement error"
    return f"{type(exc).__name__}: {message.splitlines()[0][:120]}"


@pytest.mark.parametrize("behind_pgbouncer", [False, True], ids=["setting-off", "setting-on"])
async def test_orm_transactions_through_pgbouncer_transaction_mode(
    pgbouncer: PgBouncer, fresh_database: URL, behind_pgbouncer: bool
) -> None:
    names = await seed(fresh_database)
    url = pgbouncer.url_for(fresh_database)
    tracked = pgbouncer.tracks_prepared_statements

    outcomes = await run_transactions(url, behind_pgbouncer, names)
    # Without the setting, statements go astray when two clients' transactions meet on one
    # server connection, which depends on scheduling: a round rarely has none, so a few
    # rounds must show it.
    for _round in range(4):
        if behind_pgbouncer or tracked or outcomes["ok"] < sum(outcomes.values()):
            break
        outcomes = await run_transactions(url, behind_pgbouncer, names)

    total = CLIENTS * TRANSACTIONS_PER_CLIENT
    assert sum(outcomes.values()) == total
    if behind_pgbouncer or tracked:
        assert outcomes == {"ok": total}, f"setting on, or a tracking PgBouncer: {dict(outcomes)}"
    else:
        failed = total - outcomes["ok"]
        # What the setting exists for: without it, statements go astray.
        assert failed > 0, f"expected failures with the setting off, in 5 rounds: {dict(outcomes)}"
        assert set(outcomes) <= {"ok", "prepared statement error", "wrong result"}, dict(outcomes)
    print(f"\nDB_BEHIND_PGBOUNCER={behind_pgbouncer}: {dict(outcomes)} of {total}")


async def test_statement_caches_stay_on_behind_a_pgbouncer_that_tracks_them(
    pgbouncer: PgBouncer, fresh_database: URL
) -> None:
    if not pgbouncer.tracks_prepared_statements:
        pytest.skip(
            "this PgBouncer is older than 1.21 and cannot track prepared statements "
            "(Debian 12 ships 1.18): DB_PGBOUNCER_PREPARED_STATEMENTS must stay off with it"
        )
    names = await seed(fresh_database)

    outcomes = await run_transactions(
        pgbouncer.url_for(fresh_database), True, names, prepared_statements=True
    )

    assert outcomes == {"ok": CLIENTS * TRANSACTIONS_PER_CLIENT}, dict(outcomes)
