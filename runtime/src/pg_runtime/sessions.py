"""The process's engines, and the sessions and connections they hand out."""

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Result, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from pg_runtime.engine import create_app_engine, create_poll_engine
from pg_runtime.settings import RuntimeSettings
from pg_runtime.standbys import Standby, Standbys, lost_standby
from pg_runtime.wal import parse_position


class ReadOnlySessionError(RuntimeError):
    """A write through a session opened for reading only (a GET request's)."""


class ReadOnlySession(Session):
    """A session that refuses ORM writes (flushes, INSERT/UPDATE/DELETE) before they are sent.

    The server refuses every other write, raw SQL included: the read engine's connections
    are read-only (pg_runtime/engine.py). This refusal comes first, with a clearer message.
    """

    def connection(
        self,
        bind_arguments: dict[str, Any] | None = None,
        execution_options: Mapping[str, Any] | None = None,
    ) -> Connection:
        """The session's connection, for Core; on the primary if its standby cannot give one.

        A statement that loses the standby mid-flight on this connection is not run again:
        it raises, and the request answers 503 (statements through `execute`, `scalar(s)`
        and `get` are retried, `_retry_on_primary`).
        """
        route: ReadRoute | None = self.info.get(_ROUTE)
        try:
            return super().connection(bind_arguments, execution_options)
        except Exception as error:
            if route is None or route.standby is None or not lost_standby(error):
                raise
            route.fall_back(self, error)
            return super().connection(bind_arguments, execution_options)


_REFUSED = "this session only reads (a GET request's): nothing was written"


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, *_: object) -> None:
    raise ReadOnlySessionError(_REFUSED)


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError(_REFUSED)


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _transaction_for_cursors(state: ORMExecuteState) -> None:
    """`stream()` and `yield_per` read through a server-side cursor, which PostgreSQL keeps
    only inside a transaction: a read connection in autocommit begins one (read-only, as
    the connection is) for the rest of the session, and goes back to autocommit when it
    returns to the pool (pg_runtime.engine)."""
    options = state.execution_options
    if not (options.get("stream_results") or options.get("yield_per")):
        return
    driver = state.session.connection().connection.dbapi_connection
    if getattr(driver, "autocommit", False):
        driver.set_isolation_level("read_committed")  # type: ignore[union-attr]


@dataclass
class ReadRoute:
    """Where a read session's statements go: a standby until it fails, then the primary."""

    standbys: Standbys
    standby: Standby | None
    primary: AsyncEngine

    @property
    def server(self) -> str:
        return "primary" if self.standby is None else self.standby.name

    def count(self) -> None:
        """One more read answered by this route's server (db_reads_total)."""
        (self.standbys.primary_reads if self.standby is None else self.standby.reads).inc()

    def fall_back(self, session: Session, error: BaseException) -> None:
        """The standby failed `error`: the session's statements go to the primary now."""
        assert self.standby is not None
        self.standbys.failed(self.standby, error)
        self.standby = None
        session.bind = self.primary.sync_engine


_ROUTE = "read_route"


# After _refuse_writes: a listener that returns a result ends the chain.
@event.listens_for(ReadOnlySession, "do_orm_execute")
def _retry_on_primary(state: ORMExecuteState) -> Result[object] | None:
    """A statement that loses its standby (down, restarting, cut off) runs again on the
    primary, once, and so do the session's later ones: the request sees no failure.

    Reads on a standby run in autocommit, one statement at a time, so repeating a statement
    elsewhere changes nothing the handler could have relied on.
    """
    route: ReadRoute | None = state.session.info.get(_ROUTE)
    if route is None or route.standby is None:
        return None
    try:
        return state.invoke_statement()
    except Exception as error:
        if not lost_standby(error):
            raise
        route.fall_back(state.session, error)
        return state.invoke_statement(bind_arguments={"bind": route.primary.sync_engine})


_COMMITTED = "committed"
# One snapshot for every statement of a transaction; read-only, as the read pool is.
SNAPSHOT = "REPEATABLE READ"


class WriteSession(Session):
    """The session of requests that may write: it notes a commit, for the consistency token."""


@event.listens_for(WriteSession, "after_commit")
def _note_commit(session: Session) -> None:
    session.info[_COMMITTED] = True


def committed(session: AsyncSession) -> bool:
    """Whether `session` committed a transaction."""
    return bool(session.info.get(_COMMITTED))


def read_from(session: AsyncSession) -> str | None:
    """The server a read session's statements went to, when standbys are configured."""
    route: ReadRoute | None = session.info.get(_ROUTE)
    return None if route is None else route.server


# Where the next WAL record goes: past every commit that has returned. Not
# pg_current_wal_lsn() (what is written out): with synchronous_commit=off a commit
# returns before its record is written, and a token before it would prove nothing.
_WAL_POSITION = text("SELECT pg_current_wal_insert_lsn()::text")


class DatabaseSessionManager:
    """Owns the engines between `init()` and `close()`; the app's lifespan calls both.

    Two engines, two pools, on the primary (DATABASE_URL): one for requests that write, one
    read-only at the server for GET requests (pg_runtime/engine.py). With DATABASE_READ_URL, an
    engine per standby too, which GET requests read from when it is fit (pg_runtime/standbys.py).

    Nothing connects at import, so tests and scripts point it anywhere by calling
    `init()` with their own settings.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._standbys: Standbys | None = None
        self._health_engine: AsyncEngine | None = None

    def init(self, settings: RuntimeSettings) -> None:
        if self._engine is not None:
            # A second engine would replace the first without closing its connections.
            raise RuntimeError("DatabaseSessionManager.init() called twice: close() first")
        if settings.database_url is None:
            raise RuntimeError(
                "DATABASE_URL is not set: `make run` (or `python main.py`) starts an "
                "embedded PostgreSQL and sets it; otherwise point it at your server"
            )
        if settings.database_read_url:
            # The standbys' polls run on the loop that serves (the app's lifespan's); checked
            # first, so that no engine is left open when there is none.
            asyncio.get_running_loop()
        self._engine = create_app_engine(settings, settings.database_url)
        # As a role that can only read, if there is one: then no statement a handler runs
        # makes a GET write, whatever it SETs first.
        reader_url = settings.database_reader_url or settings.database_url
        self._read_engine = create_app_engine(settings, reader_url, read_only=True)
        # Handlers read attributes after commit; expiring them would force a lazy
        # load outside the greenlet and raise MissingGreenlet.
        self._sessionmaker = async_sessionmaker(
            self._engine, expire_on_commit=False, sync_session_class=WriteSession
        )
        self._read_sessionmaker = async_sessionmaker(
            self._read_engine, sync_session_class=ReadOnlySession
        )
        # The health probes' own connection, out of the requests' pools: busy pools delay
        # no probe, and a probe's answer is bounded by DB_CONNECT_TIMEOUT, connecting and
        # answering alike (pg_runtime/health.py).
        self._health_engine = create_poll_engine(settings, settings.database_url)
        if settings.database_read_url:
            names = [f"standby-{number}" for number in range(len(settings.database_read_url))]
            self._standbys = Standbys(
                [
                    Standby(
                        name,
                        create_app_engine(settings, url, standby=name),
                        create_poll_engine(settings, url),
                    )
                    for name, url in zip(names, settings.database_read_url, strict=True)
                ],
                primary=create_poll_engine(settings, settings.database_url, connections=len(names)),
                max_lag=settings.db_standby_max_lag,
                poll_interval=settings.db_standby_poll_interval,
                retry_after=settings.db_standby_retry_after,
            )
            # Polled from the start: until a standby's first poll, its reads go to the primary.
            self._standbys.start()

    async def close(self) -> None:
        if self._standbys is not None:
            await self._standbys.close()
        for engine in self.engines:
            await engine.dispose()
        if self._health_engine is not None:
            await self._health_engine.dispose()
        self._health_engine = None
        self._engine = None
        self._read_engine = None
        self._sessionmaker = None
        self._read_sessionmaker = None
        self._standbys = None

    @property
    def engines(self) -> list[AsyncEngine]:
        """Every engine requests use: the primary's two, then each standby's."""
        primary = [engine for engine in (self._engine, self._read_engine) if engine is not None]
        standbys = [] if self._standbys is None else [s.engine for s in self._standbys.standbys]
        return primary + standbys

    @property
    def standbys(self) -> list[Standby]:
        """The standbys in DATABASE_READ_URL's order, with their state as last polled."""
        return [] if self._standbys is None else list(self._standbys.standbys)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        return self._engine

    @property
    def read_engine(self) -> AsyncEngine:
        """The engine of GET requests' sessions: read-only at the server."""
        if self._read_engine is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        return self._read_engine

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise

    @property
    def health_engine(self) -> AsyncEngine:
        """The health probes' engine: one connection, out of the requests' pools."""
        if self._health_engine is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        return self._health_engine

    @asynccontextmanager
    async def health_connection(self) -> AsyncIterator[AsyncConnection]:
        """The health probes' connection to the primary, in autocommit: never one of a pool
        that requests use, so that busy pools do not make the database look away."""
        async with self.health_engine.connect() as connection:
            yield connection

    async def wal_position(self) -> int:
        """The primary's WAL position: past every commit that has returned."""
        async with self.read_engine.connect() as connection:
            position = await connection.scalar(_WAL_POSITION)
        return parse_position(str(position))

    @asynccontextmanager
    async def session(
        self, read_only: bool = False, after: int | None = None, snapshot: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session; `read_only`: a `ReadOnlySession`, cheaper, that refuses writes, on a
        standby when one is fit to serve it, and then one past WAL position `after`, if given;
        `snapshot` (with `read_only`): all its statements see one snapshot (REPEATABLE READ).
        """
        sessionmaker = self._read_sessionmaker if read_only else self._sessionmaker
        if sessionmaker is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        route = None
        if read_only and self._standbys is not None:
            standby = self._standbys.choose(after)
            route = ReadRoute(self._standbys, standby, self.read_engine)
        on_standby = (
            {} if route is None or route.standby is None else {"bind": route.standby.engine}
        )
        async with sessionmaker(**on_standby) as session:
            if route is not None:
                session.info[_ROUTE] = route
            try:
                if snapshot:
                    await session.connection(execution_options={"isolation_level": SNAPSHOT})
                yield session
            except BaseException:
                await session.rollback()
                raise
            finally:
                if route is not None:
                    route.count()
