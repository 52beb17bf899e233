"""Read-your-writes across requests when GET requests read from standbys (pg_runtime/standbys.py).

A client that wants to read its own writes carries `X-Consistency-Token` on every request
(`0/0` at first). A request that commits answers it with its commit's WAL position; a GET
that sends that token back is read on a standby only if the standby has replayed past it,
and on the primary otherwise. Clients that carry no token cost writes nothing.

Every GET that read says who answered in `X-Read-Server`: `primary`, or `standby-N` in
DATABASE_READ_URL's order (no host names).

The token is a WAL position (`16/B374D848`): a client that forges one moves its own reads
to the primary, and no further.
"""

import logging

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pg_runtime.failures import describe
from pg_runtime.wal import InvalidPositionError, format_position, parse_position

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Consistency-Token"
SERVER_HEADER = "X-Read-Server"
# Where a request leaves them for ConsistencyHeaders (request.state).
_TOKEN = "consistency_token"
_SERVER = "read_server"


def requested_position(request: Request) -> int | None:
    """The WAL position a GET must see, from its token; a malformed token is a 400."""
    token = request.headers.get(TOKEN_HEADER)
    if token is None:
        return None
    try:
        return parse_position(token)
    except InvalidPositionError as error:
        raise HTTPException(400, f"{TOKEN_HEADER}: {error}") from None


def answered_by(request: Request, server: str | None) -> None:
    if server is not None:
        setattr(request.state, _SERVER, server)


def hand_out(request: Request, position: int | Exception) -> None:
    """Give the client the position of its commit, or nothing if it could not be read:
    the write is stored, and failing its request now would invite a second one."""
    if isinstance(position, Exception):
        logger.warning("no consistency token for a committed write: %s", describe(position))
        return
    setattr(request.state, _TOKEN, format_position(position))


class ConsistencyHeaders:
    """Adds the token and the answering server, left in request.state, to the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                added = [
                    (header.lower().encode(), str(state[key]).encode())
                    for header, key in ((TOKEN_HEADER, _TOKEN), (SERVER_HEADER, _SERVER))
                    if key in state
                ]
                if added:
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
