"""The application's engine, built from settings: pool, PgBouncer mode and timeouts."""

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from app.settings import Settings


def _milliseconds(seconds: float) -> str:
    return str(round(seconds * 1000))


def session_timeouts(settings: Settings) -> dict[str, str]:
    """The server settings that bound how long a statement or an idle transaction may last.

    A timeout set to 0 is left out: the server's own setting applies.
    """
    timeouts = {
        "statement_timeout": settings.db_statement_timeout,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout,
    }
    return {name: _milliseconds(seconds) for name, seconds in timeouts.items() if seconds}


def create_app_engine(settings: Settings, url: URL) -> AsyncEngine:
    timeouts = session_timeouts(settings)
    connect_args: dict[str, Any] = {"timeout": settings.db_connect_timeout}
    if settings.db_behind_pgbouncer:
        # In transaction mode each transaction may get another server connection, where a
        # statement prepared earlier does not exist, or another client's statement has its
        # name. With both caches off asyncpg prepares an unnamed statement inside the
        # transaction that runs it (asyncpg >= 0.31; PgBouncer 1.18 cannot track names).
        connect_args |= {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    else:
        # Startup parameters: free, and they hold for the connection's life.
        connect_args["server_settings"] = timeouts
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args=connect_args,
    )
    _replace_closed_connections(engine)
    if settings.db_behind_pgbouncer and timeouts:
        _set_timeouts_per_transaction(engine, timeouts)
    return engine


def _replace_closed_connections(engine: AsyncEngine) -> None:
    # A server that restarts, or ends a session (pg_terminate_backend, an idle timeout),
    # closes its socket, and the event loop has seen it by the time a request checks the
    # connection out: asking asyncpg costs no round trip, where pool_pre_ping's three (BEGIN,
    # an empty query, ROLLBACK) cost a GET 0.3 ms of its 1 ms of CPU (bench/throughput.py).
    # The pool then connects anew.
    @event.listens_for(engine.sync_engine, "checkout")
    def replace_if_closed(
        dbapi_connection: object, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        if record.driver_connection is not None and record.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


def _set_timeouts_per_transaction(engine: AsyncEngine, timeouts: dict[str, str]) -> None:
    # PgBouncer refuses these as startup parameters, and a session-level SET would stay on
    # the server connection for whichever client gets it next: set them for each
    # transaction only, at one round trip per transaction.
    set_local = "SELECT " + ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in timeouts.items()
    )

    @event.listens_for(engine.sync_engine, "begin")
    def set_timeouts(connection: Connection) -> None:
        connection.exec_driver_sql(set_local)
