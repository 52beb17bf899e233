"""The worker's kept connection serves the next test, whatever the last one did to it."""

from collections.abc import AsyncIterator

import pytest
from pg_harness.fixtures import begin_test_transaction
from pg_harness.outages import end_session
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

BACKEND = text("SELECT pg_backend_pid()")


@pytest.fixture
async def kept(fresh_database: URL) -> AsyncIterator[tuple[list[AsyncConnection], AsyncEngine]]:
    engine = create_async_engine(fresh_database)
    connections = [await engine.connect()]
    yield connections, engine
    await connections[0].close()
    await engine.dispose()


async def test_a_connection_the_server_ended_between_tests_is_replaced(
    kept: tuple[list[AsyncConnection], AsyncEngine], fresh_database: URL
) -> None:
    connections, engine = kept
    first = await begin_test_transaction(connections, engine)
    ended = await first.scalar(BACKEND)
    await first.rollback()
    await end_session(fresh_database, ended)

    second = await begin_test_transaction(connections, engine)
    assert await second.scalar(BACKEND) != ended
    assert second.in_transaction()


async def test_a_connection_a_test_invalidated_mid_transaction_is_replaced(
    kept: tuple[list[AsyncConnection], AsyncEngine],
) -> None:
    connections, engine = kept
    first = await begin_test_transaction(connections, engine)
    invalidated = await first.scalar(BACKEND)
    await first.invalidate()

    second = await begin_test_transaction(connections, engine)
    assert await second.scalar(BACKEND) != invalidated


async def test_a_connection_a_test_closed_is_reopened(
    kept: tuple[list[AsyncConnection], AsyncEngine],
) -> None:
    connections, engine = kept
    await (await begin_test_transaction(connections, engine)).close()

    reopened = await begin_test_transaction(connections, engine)
    assert not reopened.closed
    assert await reopened.scalar(text("SELECT 1")) == 1


async def test_each_test_gets_a_transaction_of_its_own(
    kept: tuple[list[AsyncConnection], AsyncEngine],
) -> None:
    connections, engine = kept
    first = await begin_test_transaction(connections, engine)
    await first.execute(text("CREATE TABLE left_behind (id int)"))
    # The test committed and began again; the next test starts clean all the same.
    await first.commit()
    await first.begin()
    await first.execute(text("CREATE TABLE not_kept (id int)"))

    second = await begin_test_transaction(connections, engine)
    tables = "SELECT count(*) FROM pg_tables WHERE tablename IN ('left_behind', 'not_kept')"
    assert await second.scalar(text(tables)) == 1


async def test_a_begin_listener_that_runs_a_statement_runs_in_the_test_transaction(
    kept: tuple[list[AsyncConnection], AsyncEngine],
) -> None:
    # As a project's engine behind PgBouncer sets its timeouts for each transaction.
    connections, engine = kept

    @event.listens_for(engine.sync_engine, "begin")
    def set_local(connection: Connection) -> None:
        connection.exec_driver_sql("SELECT set_config('statement_timeout', '1234', true)")

    begun = await begin_test_transaction(connections, engine)
    assert await begun.scalar(text("SHOW statement_timeout")) == "1234ms"
