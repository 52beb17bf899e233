"""The sessions a handler asks for: `ReadSession` to read, `WriteSession` to write.

The handler's signature says which, whatever its HTTP method: a GET that must write
(get-or-create, last seen) takes a `WriteSession`; a POST that only reads (a search with
a body) takes a `ReadSession`, on the read pool. `SnapshotSession` reads every statement
from one snapshot, for a handler that must see its several statements agree.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from pg_runtime.dependencies import reading, writing
from sqlalchemy.ext.asyncio import AsyncSession

from probe.session import sessionmanager


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with reading(sessionmanager, request) as session:
        yield session


async def snapshot_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with reading(sessionmanager, request, snapshot=True) as session:
        yield session


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with writing(sessionmanager, request) as session:
        yield session


# scope="function": the session closes (its ROLLBACK returns the connection) before the
# response is sent, so a failure there still becomes a 503 instead of a dropped connection.
ReadSession = Annotated[AsyncSession, Depends(read_session, scope="function")]
SnapshotSession = Annotated[AsyncSession, Depends(snapshot_session, scope="function")]
WriteSession = Annotated[AsyncSession, Depends(write_session, scope="function")]
