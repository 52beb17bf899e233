"""The process's one database engine, and the sessions and connections it hands out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from app.settings import Settings
from orm.engine import create_app_engine


class ReadOnlySessionError(RuntimeError):
    """A write through a session opened for reading only (a GET request's)."""


class ReadOnlySession(Session):
    """A session that refuses ORM writes: flushes and INSERT/UPDATE/DELETE statements.

    On a direct connection it runs in autocommit (behind PgBouncer, see `init()`): a read
    sends no BEGIN and no ROLLBACK, two of the three round trips of a one-query GET. Each
    statement still sees what was committed when it started, as it would inside a READ
    COMMITTED transaction; what is lost is a rollback, hence the refusal of writes.
    """


_REFUSED = "this session only reads (a GET request's): nothing was written"


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, *_: object) -> None:
    raise ReadOnlySessionError(_REFUSED)


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError(_REFUSED)


class DatabaseSessionManager:
    """Owns the engine between `init()` and `close()`; the app's lifespan calls both.

    Nothing connects at import, so tests and scripts point it anywhere by calling
    `init()` with their own settings.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._read_sessionmaker: async_sessionmaker[AsyncSession] | None = None

    def init(self, settings: Settings) -> None:
        if self._engine is not None:
            # A second engine would replace the first without closing its connections.
            raise RuntimeError("DatabaseSessionManager.init() called twice: close() first")
        if settings.database_url is None:
            raise RuntimeError(
                "DATABASE_URL is not set: `make run` (or `python main.py`) starts an "
                "embedded PostgreSQL and sets it; otherwise point it at your server"
            )
        self._engine = create_app_engine(settings, settings.database_url)
        # Handlers read attributes after commit; expiring them would force a lazy
        # load outside the greenlet and raise MissingGreenlet.
        self._sessionmaker = async_sessionmaker(self._engine, expire_on_commit=False)
        # Through PgBouncer reads stay in a transaction: its timeouts are set per transaction,
        # and in autocommit an unnamed statement's Parse and Bind could reach different
        # server connections.
        reads = self._engine
        if not settings.db_behind_pgbouncer:
            reads = reads.execution_options(isolation_level="AUTOCOMMIT")
        self._read_sessionmaker = async_sessionmaker(reads, sync_session_class=ReadOnlySession)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessionmaker = None
        self._read_sessionmaker = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        return self._engine

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise

    @asynccontextmanager
    async def session(self, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session; `read_only`: a `ReadOnlySession`, cheaper, that refuses writes."""
        sessionmaker = self._read_sessionmaker if read_only else self._sessionmaker
        if sessionmaker is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        async with sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise


sessionmanager = DatabaseSessionManager()
