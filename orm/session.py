"""The process's one database engine, and the sessions and connections it hands out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from orm.engine import create_app_engine


class DatabaseSessionManager:
    """Owns the engine between `init()` and `close()`; the app's lifespan calls both.

    Nothing connects at import, so tests and scripts point it anywhere by calling
    `init()` with their own settings.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

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

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessionmaker = None

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
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self._sessionmaker is None:
            raise RuntimeError("DatabaseSessionManager.init() has not been called")
        async with self._sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise


sessionmanager = DatabaseSessionManager()


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request. It never commits: a handler that writes commits itself."""
    async with sessionmanager.session() as session:
        yield session
