"""A transport whose close lets a client that is still sending read the answer it got.

Closed with unread input, a TCP socket sends a reset, and the client's stack may drop the
answer before the client reads it: a client uploading 20 MB without waiting for
`100 Continue` got a reset instead of its 413. Lingering instead: a FIN after the answer,
then read and drop what still comes, until the client closes or LINGER_SECONDS pass.
"""

import asyncio
from collections.abc import Callable

# How long a connection may keep sending after its answer; what it sends is dropped.
LINGER_SECONDS = 5.0


class LingeringTransport(asyncio.Transport):
    """`transport` as a protocol's code sees it: the same, except `close()`, which lingers
    when `client_may_be_sending()` says so."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        client_may_be_sending: Callable[[], bool],
    ) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._client_may_be_sending = client_may_be_sending
        # From close() on: what the client sends is no request any more.
        self.closed = False
        # Bound once: a call costs what it costs on the transport itself.
        self.write = transport.write  # type: ignore[method-assign]
        self.get_extra_info = transport.get_extra_info  # type: ignore[method-assign]
        self.pause_reading = transport.pause_reading  # type: ignore[method-assign]
        self.resume_reading = transport.resume_reading  # type: ignore[method-assign]
        self.is_reading = transport.is_reading  # type: ignore[method-assign]
        self.set_protocol = transport.set_protocol  # type: ignore[method-assign]
        self.get_protocol = transport.get_protocol  # type: ignore[method-assign]
        self.abort = transport.abort  # type: ignore[method-assign]

    def is_closing(self) -> bool:
        return self.closed or self._transport.is_closing()

    def close(self) -> None:
        if self.is_closing():
            return
        self.closed = True
        transport = self._transport
        if not self._client_may_be_sending() or not transport.can_write_eof():  # TLS cannot
            transport.close()
            return
        transport.write_eof()  # sent once what is buffered (the answer) is
        transport.resume_reading()  # flow control may have paused it
        # The client's FIN ends it sooner: asyncio closes a transport whose protocol's
        # eof_received returns None, as uvicorn's does.
        self._loop.call_later(LINGER_SECONDS, transport.close)
