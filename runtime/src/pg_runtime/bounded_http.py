"""uvicorn's HTTP/1.1 protocol (httptools) with bounds on what a client sends: the size of a
request's head, the time to send the head and the body; and a close that lets a client
still sending read the answer it got.

httptools has no limit of its own (a 191 MiB header was buffered whole), and uvicorn times
only the idle wait between requests. This subclass adds per-connection work (a transport
wrapper, one timer while a request arrives in pieces); a request that arrives in one read,
as a GET does, arms no timer.
"""

import asyncio
import enum
import functools
import http
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# How long a refused connection keeps reading (and dropping) what its client still sends,
# after the answer and a FIN: closing with unread input sends an RST, and the client's
# TCP stack may then discard the answer before the client reads it.
LINGER_SECONDS = 5.0


@dataclass(frozen=True)
class WireLimits:
    """What a connection may send (a dataclass, so that the spawned workers get it pickled)."""

    max_header_size: int  # bytes of request line and headers; more: 431
    header_timeout: float  # seconds from the connection, or a request's first byte, to its head
    body_timeout: float  # seconds from the head to the body's last byte; more: 408


def bounded_protocol(limits: WireLimits) -> Any:
    """The `http=` factory for `uvicorn.run`: each connection gets `limits`."""
    return functools.partial(BoundedHttpToolsProtocol, limits=limits)


class _Phase(enum.Enum):
    IDLE = "between requests: uvicorn's keep-alive timeout applies"
    HEAD = "a request's line and headers are arriving"
    BODY = "its body is arriving"
    HANDLED = "received whole: the app has it"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: WireLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._phase = _Phase.IDLE
        self._head_size = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._timed_phase: _Phase | None = None
        self._lingering = False
        self._socket: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket = transport
        super().connection_made(_LingeringTransport(transport, self))
        # A connection that never completes a head is closed: its first request is timed
        # from the connection, so that one sending nothing is bounded too.
        self._time(_Phase.HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lingering = True  # nothing more to read; a close from here is final
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # dropped: the answer is sent, the connection closes after LINGER_SECONDS
        super().data_received(data)
        if self._lingering:
            return  # refused while parsing (uvicorn's 400)
        phase = self._phase
        if phase is _Phase.HEAD:
            # Counted after parsing, so a head overshoots by one read (256 KiB) at most.
            self._head_size += len(data)
            if self._head_size > self._limits.max_header_size:
                self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return
        # Stray bytes between requests start the next one's clock too.
        wanted = _Phase.HEAD if phase is _Phase.IDLE else phase
        if wanted is not self._timed_phase and not self._lingering:
            self._time(wanted)

    # httptools' callbacks: they only note where the request is; data_received acts on it.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD
        self._head_size = 0

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = _Phase.BODY

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body ended (a 413): uvicorn armed its keep-alive timeout
            # then, and the rest of the body cancelled it; arm it again.
            self._phase = _Phase.IDLE
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        else:
            self._phase = _Phase.HANDLED

    def handle_websocket_upgrade(self) -> None:
        # The connection is the WebSocket protocol's from here: no HTTP deadline applies.
        self._phase = _Phase.HANDLED
        self._time(_Phase.HANDLED)
        super().handle_websocket_upgrade()

    def on_response_complete(self) -> None:
        if self._phase is _Phase.HANDLED:
            self._phase = _Phase.IDLE
        super().on_response_complete()

    def _time(self, phase: _Phase) -> None:
        self._cancel_deadline()
        self._timed_phase = phase
        if phase is _Phase.HEAD:
            self._deadline = self.loop.call_later(self._limits.header_timeout, self._time_out)
        elif phase is _Phase.BODY:
            self._deadline = self.loop.call_later(self._limits.body_timeout, self._time_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _time_out(self) -> None:
        self._deadline = None
        if self._phase is _Phase.HEAD:
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT)
        elif self._phase is _Phase.BODY and not self.cycle.response_started:
            # The app waits for the body: it receives a disconnect, and whatever it sends
            # is dropped (uvicorn's own handling of a client gone).
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT)
        else:  # nothing was sent, or the answer is out already (a 413 before the body)
            self.transport.close()

    def _refuse(self, status: http.HTTPStatus) -> None:
        """Answer `status` and close; unless an earlier request's answer is still due
        (pipelining), which this one would cut into: then close only."""
        earlier = self.cycle if self._phase is _Phase.HEAD else None
        if self.pipeline or (earlier is not None and not earlier.response_complete):
            self.transport.close()
            return
        body = status.phrase.encode()
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head.append(
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _close(self) -> None:
        """Close, lingering when the client may still be sending a request."""
        socket = self._socket
        assert socket is not None
        if self._lingering or socket.is_closing():
            return
        self._cancel_deadline()
        self._unset_keepalive_if_required()
        if self._phase not in (_Phase.HEAD, _Phase.BODY) or not socket.can_write_eof():
            socket.close()
            return
        self._lingering = True
        socket.write_eof()  # a FIN once the answer is flushed
        socket.resume_reading()  # flow control may have paused it; what arrives is dropped
        # The client's FIN ends it sooner: eof_received returns None, so asyncio closes.
        self._deadline = self.loop.call_later(LINGER_SECONDS, socket.close)


class _LingeringTransport(asyncio.Transport):
    """The transport uvicorn's code sees: the same, except that `close()` lingers."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedHttpToolsProtocol) -> None:
        super().__init__()
        self._transport = transport
        self._protocol = protocol
        # Bound once: a call costs what it cost on the transport itself.
        self.write = transport.write  # type: ignore[method-assign]
        self.get_extra_info = transport.get_extra_info  # type: ignore[method-assign]
        self.pause_reading = transport.pause_reading  # type: ignore[method-assign]
        self.resume_reading = transport.resume_reading  # type: ignore[method-assign]
        self.set_protocol = transport.set_protocol  # type: ignore[method-assign]
        self.get_protocol = transport.get_protocol  # type: ignore[method-assign]
        self.abort = transport.abort  # type: ignore[method-assign]

    def is_closing(self) -> bool:
        return self._protocol._lingering or self._transport.is_closing()

    def close(self) -> None:
        self._protocol._close()
