"""The sessions a handler asks for: `ReadSession` to read, `WriteSession` to write.

The handler's signature says which, whatever its HTTP method: a GET that must write
(get-or-create, last seen) takes a `WriteSession`; a POST that only reads (a search with
a body) takes a `ReadSession`, on the read pool. `SnapshotSession` reads every statement
from one snapshot, for a handler that must see its several statements agree.
"""

from typing import Annotated

from fastapi import Depends
from pg_runtime.dependencies import session_dependencies
from sqlalchemy.ext.asyncio import AsyncSession

from probe.session import sessionmanager

sessions = session_dependencies(sessionmanager)

# scope="function": the session closes (its ROLLBACK returns the connection) before the
# response is sent, so a failure there still becomes a 503 instead of a dropped connection.
ReadSession = Annotated[AsyncSession, Depends(sessions.read, scope="function")]
SnapshotSession = Annotated[AsyncSession, Depends(sessions.snapshot, scope="function")]
WriteSession = Annotated[AsyncSession, Depends(sessions.write, scope="function")]
