"""The session of one request: for reading, or for writing; a handler says which it needs.

A reading session (`reading`) is a `ReadOnlySession` (pg_runtime.sessions) on the read
pool, read-only at the server, in autocommit: no BEGIN or ROLLBACK round trips, and a
write raises instead; with DATABASE_READ_URL it reads on a standby when one is fit
(pg_runtime.consistency). A writing session (`writing`) is on the primary's write pool,
whatever the request's HTTP method: a GET that must write (get-or-create) asks for one.
Neither commits by itself: a handler that writes commits before it returns.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from pg_runtime.consistency import answered_by, hand_out, requested_position
from pg_runtime.sessions import DatabaseSessionManager, committed, read_from


@asynccontextmanager
async def reading(
    sessionmanager: DatabaseSessionManager, request: Request, snapshot: bool = False
) -> AsyncIterator[AsyncSession]:
    """A read-only session for `request`; `snapshot`: every statement sees one snapshot
    (REPEATABLE READ READ ONLY, in a transaction: server-side cursors, `stream()` and
    `yield_per` work in any reading session, this one adds the single snapshot)."""
    after = requested_position(request)
    async with sessionmanager.session(read_only=True, after=after, snapshot=snapshot) as session:
        try:
            yield session
        finally:  # a 404 or a 409 says who answered too
            answered_by(request, read_from(session))


@asynccontextmanager
async def writing(
    sessionmanager: DatabaseSessionManager, request: Request
) -> AsyncIterator[AsyncSession]:
    """A session on the primary that may write, for `request`."""
    # A client that carries a token asks for one back: a write answers it with its commit's
    # position. Asked for only, since it costs the write a query (bench/replicas.py).
    # Checked first: a malformed token refused after the commit would invite a second one.
    wants_token = requested_position(request) is not None
    async with sessionmanager.session() as session:
        yield session
    if wants_token and committed(session) and sessionmanager.standbys:
        try:
            position: int | Exception = await sessionmanager.wal_position()
        except Exception as error:
            position = error
        hand_out(request, position)


SessionDependency = Callable[[Request], AsyncIterator[AsyncSession]]


@dataclass(frozen=True)
class SessionDependencies:
    """A service's three session dependencies, for `Depends(...)` in its
    `ReadSession`, `SnapshotSession` and `WriteSession` (the template's api/dependencies.py),
    and for a test to override (pg_runtime.testing.sessions_on)."""

    read: SessionDependency
    snapshot: SessionDependency
    write: SessionDependency


def session_dependencies(sessionmanager: DatabaseSessionManager) -> SessionDependencies:
    """The session dependencies on `sessionmanager`: reading, reading one snapshot, writing."""

    async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
        async with reading(sessionmanager, request) as session:
            yield session

    async def snapshot_session(request: Request) -> AsyncIterator[AsyncSession]:
        async with reading(sessionmanager, request, snapshot=True) as session:
            yield session

    async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
        async with writing(sessionmanager, request) as session:
            yield session

    return SessionDependencies(read_session, snapshot_session, write_session)
