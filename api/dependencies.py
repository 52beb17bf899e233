"""Dependencies that handlers take as annotated parameters."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from orm.session import get_session

# scope="function": the session closes (its ROLLBACK returns the connection) before the
# response is sent. Closed after it, a ROLLBACK failing on a connection the server has just
# cut could no longer become a 503: uvicorn logged a traceback and dropped the client's
# connection after a 200 (tests/scaleout/test_restart.py).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
