"""What a handler sets on its database session ends with its request.

A pooled connection serves request after request: a `SET statement_timeout = 0`, a
`SET ROLE`, a `SET default_transaction_read_only = off` on a read connection, a session
advisory lock, a LISTEN or a temporary table would otherwise greet the next request.

Only a connection that ran something able to change its session is reset: raw SQL
(`text()`, `exec_driver_sql`), DDL, or a Core/ORM statement naming a function that changes
session state (set_config, the advisory locks). A request of ORM and Core statements alone,
as the template's are, costs a look-up per statement instead of a round trip, which
would cost a GET more than its 5 % budget (bench/session_reset.py).

Directly, the server's session is the pool's connection: it is reset when it returns to
the pool, in one round trip. RESET ALL brings every setting back to its value at
connection, the DB_ settings and the read pool's read-only start included.

Behind PgBouncer in transaction mode, the next statement of this connection may run on
another server connection, and the one the handler changed goes to another client. Every
statement there runs in a transaction (the read pool's too): one that rolls back (every
read request's) undoes its SET, set_config, SET ROLE, LISTEN and temporary tables by
itself; before one commits, the reset runs inside it, on the server connection that holds
the state. A session advisory lock taken by a read that rolls back stays with its server
connection: PgBouncer's transaction mode does not support such locks at all (its
documentation), and releasing them on every rollback would cost every read a round trip.

Not reset: prepared statements (asyncpg's cache, which DISCARD ALL would drop and
re-prepare on every request), sequences' `currval`, what is kept in the catalogue
(`ALTER ROLE ... SET`, which needs privileges the app's role should not have), and what
bypasses SQLAlchemy: statements sent on the asyncpg connection itself, or a function of
the schema's own that changes session state when called from an ORM statement.
"""

import functools
from contextlib import suppress
from typing import Any

from asyncpg.exceptions import (
    InFailedSQLTransactionError,
    InterfaceError,
    InternalClientError,
    PostgresError,
)
from sqlalchemy import Connection, event
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.sql.expression import CompoundSelect, Delete, Insert, Select, Update
from sqlalchemy.util import await_

# asyncpg's own pool resets with the first four (Connection.reset); RESET ALL leaves the
# role and the session user alone, and temporary tables are no setting.
RESET = (
    "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL; "
    "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; DISCARD TEMP"
)


# Marks a connection (its pool record) that ran something able to change its session.
_MAY_HAVE_CHANGED = "session may have changed"
# An execution option: a statement of the runtime's own that changes nothing beyond its
# transaction (pg_runtime.engine's timeouts set per transaction).
TRANSACTION_ONLY = "pg_runtime_transaction_only"
# What Core and the ORM build from their constructs, which cannot say SET, LISTEN or CREATE.
_CONSTRUCTS = (Select, CompoundSelect, Insert, Update, Delete)
# The built-in functions that change the session from inside any statement.
_SESSION_FUNCTIONS = ("set_config", "advisory", "setseed", "dblink")


# Cached: Core and the ORM send the same few statement strings over and over, and a GET's
# statement is long enough for a scan to show in its CPU (bench/session_reset.py).
@functools.lru_cache(maxsize=1024)
def names_a_session_function(statement: str) -> bool:
    """Whether `statement` calls a function that changes the session, by its name."""
    lowered = statement.lower()
    return any(name in lowered for name in _SESSION_FUNCTIONS)


def reset_sessions(engine: AsyncEngine, behind_pgbouncer: bool) -> None:
    """Leave nothing a request set on `engine`'s connections for the next one."""
    _note_what_may_change_sessions(engine)
    if behind_pgbouncer:
        _reset_before_commit(engine)
    else:
        _reset_on_return(engine)


def _note_what_may_change_sessions(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def note(
        connection: Connection,
        cursor: object,
        statement: str,
        parameters: object,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        compiled = context.compiled if context is not None else None
        if compiled is not None and isinstance(compiled.statement, _CONSTRUCTS):
            if not names_a_session_function(statement):
                return
        elif context is not None and context.execution_options.get(TRANSACTION_ONLY):
            return
        connection.info[_MAY_HAVE_CHANGED] = True


def _reset_on_return(engine: AsyncEngine) -> None:
    # Instead of the pool's own rollback on return (create_app_engine turns it off), which
    # this does first.
    @event.listens_for(engine.sync_engine.pool, "reset")
    def reset(dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState) -> None:
        if state.terminate_only or not state.asyncio_safe:
            return  # the connection is being closed, not reused
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            return  # ended by the server: the pool replaces it at checkout (pg_runtime.engine)
        try:
            dbapi_connection.rollback()  # the transaction SQLAlchemy began, if any
            if not record.info.pop(_MAY_HAVE_CHANGED, False):
                return
            # A BEGIN sent as plain SQL, which SQLAlchemy knows nothing of.
            script = f"ROLLBACK; {RESET}" if driver.is_in_transaction() else RESET
            await_(driver.execute(script))
        except (PostgresError, InterfaceError, InternalClientError, OSError):
            # Returned mid-statement (its request cancelled while the server restarted, say),
            # ended by the server meanwhile, or refused: its state is unknown, so it is not
            # reused. Closed here, it is replaced at checkout (pg_runtime.engine), where
            # raising would have the pool log a traceback.
            driver.terminate()


def _reset_before_commit(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "commit")
    def reset(connection: Connection) -> None:
        if not connection.info.pop(_MAY_HAVE_CHANGED, False):
            return
        driver = connection.connection.driver_connection
        assert driver is not None
        # A failed transaction refuses it: its COMMIT rolls back, and its SETs with it.
        with suppress(InFailedSQLTransactionError):
            await_(driver.execute(RESET))

    @event.listens_for(engine.sync_engine, "rollback")
    def forget(connection: Connection) -> None:
        # Ended under it (a timeout, PgBouncer closing it): its info may not be read until
        # this rollback is done, and is cleared when its pool record connects again.
        if connection.invalidated:
            return
        connection.info.pop(_MAY_HAVE_CHANGED, None)  # the rollback undid it
