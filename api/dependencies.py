"""Dependencies that handlers take as annotated parameters."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.consistency import answered_by, hand_out, requested_position
from orm.session import committed, read_from, sessionmanager

# HTTP's safe methods: they must not change anything, so their session may not either.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. It never commits: a handler that writes commits itself.

    GET requests get a `ReadOnlySession` (orm/session.py): no BEGIN or ROLLBACK round
    trips (a fifth of a GET's CPU, bench/throughput.py), and a write raises instead. With
    DATABASE_READ_URL it reads on a standby when one is fit (api/consistency.py); other
    requests, reads included, stay on the primary.
    """
    if request.method in READ_ONLY_METHODS:
        after = requested_position(request)
        async with sessionmanager.session(read_only=True, after=after) as session:
            try:
                yield session
            finally:  # a 404 or a 409 says who answered too
                answered_by(request, read_from(session))
        return
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


# scope="function": the session closes (its ROLLBACK returns the connection) before the
# response is sent. Closed after it, a ROLLBACK failing on a connection the server has just
# cut could no longer become a 503: uvicorn logged a traceback and dropped the client's
# connection after a 200 (tests/scaleout/test_restart.py).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
