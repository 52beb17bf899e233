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
    """A session that refuses ORM writes (flushes, INSERT/UPDATE/DELETE) before they are sent.

    The server refuses every other write, raw SQL included: the read engine's connections
    are read-only (orm/engine.py). This refusal comes first, with a clearer message.
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
    """Owns the engines between `init()` and `close()`; the app's lifespan calls both.

    Two engines, two pools: one for requests that write, one read-only at the server for
    GET requests (orm/engine.py).

    Nothing connects at import, so tests and scripts point it anywhere by calling
    `init()` with their own settings.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
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
        self._read_engine = create_app_engine(settings, settings.database_url, read_only=True)
        # Handlers read attributes after commit; expiring them would force a lazy
        # load outside the greenlet and raise MissingGreenlet.
        self._sessionmaker = async_sessionmaker(self._engine, expire_on_commit=False)
        self._read_sessionmaker = async_sessionmaker(
            self._read_engine, sync_session_class=ReadOnlySession
        )

    async def close(self) -> None:
        for engine in (self._engine, self._read_engine):
            if engine is not None:
                await engine.dispose()
        self._engine = None
        self._read_engine = None
        self._sessionmaker = None
        self._read_sessionmaker = None

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
