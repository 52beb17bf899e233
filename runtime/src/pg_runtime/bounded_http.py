"""uvicorn's HTTP/1.1 protocol (httptools) with bounds on what a client sends: the size of a
request's head, and the time to send the head and then the body.

httptools has no limit of its own (a 191 MiB header was buffered whole), and uvicorn times
only the idle wait between requests. The bounds cost each connection a transport wrapper
and one timer; a request that arrives in one read, as a GET does, arms no timer.
"""

import asyncio
import functools
import http
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pg_runtime.lingering_close import LingeringTransport


@dataclass(frozen=True)
class WireLimits:
    """What a connection may send (a dataclass: uvicorn pickles it to spawned workers)."""

    max_header_size: int  # bytes of request line and headers together; more: 431
    header_timeout: float  # seconds from the connection, or a request's first byte, to its head
    body_timeout: float  # seconds from the head to the body's last byte; more: 408


def bounded_protocol(limits: WireLimits) -> Any:
    """The `http=` of `uvicorn.run`: the protocol class, each connection bound by `limits`."""
    return functools.partial(BoundedHttpToolsProtocol, limits=limits)


# Where a connection is (plain constants: an Enum member costs a lookup ten times slower,
# on every request).
_IDLE = "between requests (uvicorn's keep-alive timeout applies)"
_HEAD = "a request's line and headers are arriving"
_BODY = "its body is arriving"
_HANDLED = "received whole: the app has it"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection, as uvicorn serves it, within `limits` (refusals: 431 and 408)."""

    def __init__(self, *args: Any, limits: WireLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._phase = _IDLE
        self._head_size = 0  # bytes received since the head began, an upper bound
        self._head_tail = b""  # the last bytes of it: the empty line may straddle two reads
        self._deadline: asyncio.TimerHandle | None = None
        self._timed_phase: str = _HEAD
        self._wire: LingeringTransport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._wire = LingeringTransport(transport, self.loop, self._client_may_be_sending)
        super().connection_made(self._wire)
        # The first request is timed from the connection: one that sends nothing is closed.
        self._time(_HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        wire = self._wire
        assert wire is not None
        if wire.closed:
            return  # answered and closing: dropped (pg_runtime.lingering_close)
        phase = self._phase
        if phase is not _BODY:
            # A head may be in this read: refused before it is parsed, so a worker never
            # holds more of it than MAX_HEADER_SIZE and one read.
            carried = self._head_size if phase is _HEAD else 0
            if carried + len(data) > self._limits.max_header_size and self._too_large(
                data, carried
            ):
                self._phase = _HEAD
                self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return
        super().data_received(data)
        if wire.closed:
            return  # refused while parsing (uvicorn's 400)
        phase = self._phase
        if phase is _HEAD:
            self._head_size += len(data)
            self._head_tail = data[-3:]
        # Stray bytes between requests (blank lines) start the next one's clock too.
        wanted = _HEAD if phase is _IDLE else phase
        if wanted is not self._timed_phase:
            self._time(wanted)

    def _too_large(self, data: bytes, carried: int) -> bool:
        tail = self._head_tail if carried else b""
        end = _head_length(tail + data)
        return carried + (len(data) if end is None else end - len(tail)) > (
            self._limits.max_header_size
        )

    # httptools' callbacks only note where the request is; data_received acts on it.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._head_size = 0
        self._head_tail = b""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = _BODY

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body ended (a 413): uvicorn armed its keep-alive timeout
            # then, and the rest of the body cancelled it. Armed again.
            self._phase = _IDLE
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        else:
            self._phase = _HANDLED

    def on_response_complete(self) -> None:
        if self._phase is _HANDLED:
            self._phase = _IDLE
        super().on_response_complete()

    def handle_websocket_upgrade(self) -> None:
        # The connection is the WebSocket protocol's from here: no HTTP deadline applies.
        self._phase = _HANDLED
        self._time(_HANDLED)
        super().handle_websocket_upgrade()

    def _client_may_be_sending(self) -> bool:
        return self._phase is _HEAD or self._phase is _BODY

    def _time(self, phase: str) -> None:
        self._cancel_deadline()
        self._timed_phase = phase
        if phase is _HEAD:
            self._deadline = self.loop.call_later(self._limits.header_timeout, self._time_out)
        elif phase is _BODY:
            self._deadline = self.loop.call_later(self._limits.body_timeout, self._time_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _time_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.pipeline:
            # uvicorn stopped reading until the answers before it are out: the wait is ours.
            self._time(self._timed_phase)
        elif self._phase is _HEAD or (self._phase is _BODY and not self.cycle.response_complete):
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT)
        else:  # nothing came (a connection, or blank lines), or answered already (a 413)
            self.transport.close()

    def _refuse(self, status: http.HTTPStatus) -> None:
        """Answer `status` and close (lingering, so that a client still sending reads it)."""
        cycle = self.cycle
        unanswered = cycle is not None and not cycle.response_complete
        if unanswered:
            # Its app stops waiting for a body and what it sends is dropped, as when a
            # client leaves (uvicorn's own flags).
            cycle.disconnected = True
            cycle.message_event.set()
            if self._phase is not _BODY or cycle.response_started:
                # An earlier request's answer is due first, or this one's is half-sent.
                self.transport.close()
                return
        body = status.phrase.encode()
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        defaults = self.server_state.default_headers  # server, date
        head += [name + b": " + value + b"\r\n" for name, value in defaults]
        head.append(
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _head_length(data: bytes) -> int | None:
    """The bytes of `data` up to the empty line that ends a head, that line included; None
    if it has none."""
    ends = [at + len(mark) for mark in (b"\n\r\n", b"\n\n") if (at := data.find(mark)) >= 0]
    return min(ends) if ends else None
