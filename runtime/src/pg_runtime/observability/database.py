"""The pools' and queries' figures, from SQLAlchemy's events, and slow queries logged.

Kept from events as they happen, in each process's own metrics, rather than read from the
pool at scrape time: a collector's reading would come from whichever worker answered
the scrape only.
"""

import logging
import time
from typing import cast

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from pg_runtime.observability.metrics import (
    POOL_CHECKED_OUT,
    POOL_OVERFLOW,
    POOL_SIZE,
    POOL_TIMEOUTS,
    POOL_WAIT,
    QUERY_DURATION,
    SLOW_QUERIES,
)
from pg_runtime.settings import RuntimeSettings

logger = logging.getLogger("app.queries")

_STARTED = "observability.started"
_IN_USE = "observability.in_use"


class MeasuredPool(AsyncAdaptedQueuePool):
    """The app's pool: once `measure_as()` names it, times each wait for a connection,
    counts those that time out, and keeps the overflow figure, which changes as connections
    are got and given back. Unnamed (METRICS_ENABLED=false), it measures nothing."""

    _measured_as: str | None = None

    def measure_as(self, label: str) -> None:
        # The metrics' children, looked up once: labels() takes a lock, and these run at
        # every checkout and return.
        self._measured_as = label
        self._measured_wait = POOL_WAIT.labels(label)
        self._measured_timeouts = POOL_TIMEOUTS.labels(label)
        self._measured_overflow = POOL_OVERFLOW.labels(label)

    def _do_get(self) -> ConnectionPoolEntry:
        if self._measured_as is None:
            return super()._do_get()
        started = time.perf_counter()
        try:
            got = super()._do_get()
        except PoolTimeoutError:
            self._measured_timeouts.inc()
            raise
        finally:
            self._measured_wait.observe(time.perf_counter() - started)
        self._measured_overflow.set(max(0, self.overflow()))
        return got

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)  # closes an overflow connection
        if self._measured_as is not None:
            self._measured_overflow.set(max(0, self.overflow()))

    def recreate(self) -> "MeasuredPool":
        # engine.dispose() replaces the pool: the new one is measured as this one was.
        pool = cast(MeasuredPool, super().recreate())
        if self._measured_as is not None:
            pool.measure_as(self._measured_as)
        return pool


def observe(engine: AsyncEngine, pool: str, settings: RuntimeSettings) -> None:
    """Counts `engine`'s pool (`pool`: its label) and times its statements, as `settings` say.

    Statements slower than DB_SLOW_QUERY_MS are logged with their text, never their
    parameters.
    """
    if settings.metrics_enabled:
        _count_pool(engine, pool)
    if settings.metrics_enabled or settings.db_slow_query_ms:
        _time_queries(engine, pool, settings.metrics_enabled, settings.db_slow_query_ms / 1000)


def _count_pool(engine: AsyncEngine, pool: str) -> None:
    sync_pool = engine.sync_engine.pool
    if isinstance(sync_pool, MeasuredPool):
        sync_pool.measure_as(pool)
    POOL_SIZE.labels(pool).set(sync_pool.size())  # type: ignore[attr-defined]
    checked_out = POOL_CHECKED_OUT.labels(pool)

    # SQLAlchemy also gives back connections whose checkout failed half-way (a listener
    # refused one the server had closed), and detaches some without giving them back: a
    # connection counts as in use from its counted checkout until it leaves, once.
    @event.listens_for(sync_pool, "checkout")
    def checkout(dbapi_connection: object, record: ConnectionPoolEntry, *_: object) -> None:
        if (info := record.record_info) is not None:
            info[_IN_USE] = True
            checked_out.inc()

    @event.listens_for(sync_pool, "checkin")
    @event.listens_for(sync_pool, "detach")
    def leaves(dbapi_connection: object, record: ConnectionPoolEntry | None) -> None:
        info = record.record_info if record is not None else None
        if info is not None and info.pop(_IN_USE, False):
            checked_out.dec()


def _time_queries(engine: AsyncEngine, pool: str, count: bool, slow_after: float) -> None:
    query_duration = QUERY_DURATION.labels(pool)
    slow_queries = SLOW_QUERIES.labels(pool)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def start(conn: Connection, *_: object) -> None:
        conn.info[_STARTED] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def finish(conn: Connection, cursor: object, statement: str, *_: object) -> None:
        seconds = time.perf_counter() - conn.info.pop(_STARTED)
        if count:
            query_duration.observe(seconds)
        if slow_after and seconds >= slow_after:
            if count:
                slow_queries.inc()
            # The statement's text only: its parameters are the clients' data.
            logger.warning(
                "slow query (%.0f ms) on the %s pool: %s", seconds * 1000, pool, statement
            )
