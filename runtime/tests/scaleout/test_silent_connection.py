"""A connection that goes silent: the app answers once the driver's command timeout runs
out, discards the connection, and says so when a COMMIT's outcome is unknown.

A NAT that forgets a connection, or a failover, leaves the client's socket open with nobody
answering: no error, no close, until the operating system's TCP timeout (minutes). The
test puts a small TCP proxy of its own between the app and the server, which can stop
forwarding, both ways, while keeping every socket open.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import anyio
import asyncpg
import pytest
from anyio.abc import SocketAttribute, SocketStream
from httpx import AsyncClient
from in_process import app_client, settings_for
from pg_harness.urls import asyncpg_connect_args
from pg_runtime.engine import COMMAND_TIMEOUT_MARGIN
from probe.dependencies import ReadSession
from probe.factory import create_app
from probe.routes import router
from probe.session import sessionmanager
from sqlalchemy import event, text
from sqlalchemy.engine import URL

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT = 0.5
COMMAND_TIMEOUT = STATEMENT_TIMEOUT + COMMAND_TIMEOUT_MARGIN
# Far below the TCP timeout a silent connection would otherwise wait for.
ANSWER_WITHIN = 10.0

NO_ANSWER = {"detail": "the database took too long to answer"}
OUTCOME_UNKNOWN = {
    "detail": "the connection to the database was lost during the commit: the change may "
    "or may not have been stored; read it back before trying again"
}

# Before its startup message a client's messages have no type byte; these two ask for
# encryption, and the startup message follows them.
_ENCRYPTION_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest


class ClientMessages:
    """Cuts what a PostgreSQL client sends into whole protocol messages."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(its type byte, b"" before the startup message; the whole message), in order."""
        self._buffer += data
        while True:
            type_length = 1 if self._started else 0
            if len(self._buffer) < type_length + 4:
                return
            end = type_length + int.from_bytes(self._buffer[type_length : type_length + 4])
            if len(self._buffer) < end:
                return
            message, self._buffer = self._buffer[:end], self._buffer[end:]
            if not self._started and _request_code(message) not in _ENCRYPTION_REQUESTS:
                self._started = True
            yield message[:type_length], message


def _request_code(untyped_message: bytes) -> int:
    return int.from_bytes(untyped_message[4:8])


def _is_commit(kind: bytes, message: bytes) -> bool:
    # asyncpg sends COMMIT as a simple query: 'Q', length, the text, a NUL.
    return kind == b"Q" and message[5:].lstrip().upper().startswith(b"COMMIT")


@dataclass
class _Link:
    """A client's connection through the proxy, and the proxy's own to the server."""

    client: SocketStream
    server: SocketStream
    silent: bool = False


class SilenceableProxy:
    """Forwards between clients and a PostgreSQL server, and can fall silent.

    A silent connection forwards nothing either way, and its sockets stay open even when
    the other side closes: neither end is ever told.
    """

    def __init__(self, upstream: URL) -> None:
        assert upstream.host is not None
        assert upstream.port is not None
        self._upstream = (upstream.host, upstream.port)
        self.port = 0
        self._links: list[_Link] = []
        self._silence_at_commit = False

    def fall_silent(self) -> None:
        """Silence every open connection; those opened afterwards are forwarded."""
        for link in self._links:
            link.silent = True

    def fall_silent_at_commit(self) -> None:
        """The next COMMIT reaches the server, and the connection falls silent: its
        answer is lost."""
        self._silence_at_commit = True

    async def serve(self, client: SocketStream) -> None:
        async with client, await anyio.connect_tcp(*self._upstream) as server:
            link = _Link(client, server)
            self._links.append(link)
            async with anyio.create_task_group() as pumps:

                async def pump(forward: Callable[[_Link], Awaitable[None]]) -> None:
                    with suppress(
                        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
                    ):
                        await forward(link)
                    if link.silent:
                        await anyio.sleep_forever()  # the other end is never told
                    pumps.cancel_scope.cancel()  # closes both sockets

                pumps.start_soon(pump, self._to_server)
                pumps.start_soon(pump, self._to_client)

    async def _to_server(self, link: _Link) -> None:
        messages = ClientMessages()
        while True:
            for kind, message in messages.feed(await link.client.receive()):
                if link.silent:
                    continue
                if kind == b"" and _request_code(message) in _ENCRYPTION_REQUESTS:
                    # Declined here ("N"), whatever the server offers: the proxy must read
                    # the messages to find COMMIT.
                    await link.client.send(b"N")
                    continue
                if self._silence_at_commit and _is_commit(kind, message):
                    self._silence_at_commit = False
                    link.silent = True  # before the server can answer
                await link.server.send(message)

    async def _to_client(self, link: _Link) -> None:
        while True:
            data = await link.server.receive()
            if not link.silent:
                await link.client.send(data)


@asynccontextmanager
async def silenceable_proxy(upstream: URL) -> AsyncIterator[SilenceableProxy]:
    proxy = SilenceableProxy(upstream)
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tasks,
    ):
        proxy.port = listener.extra(SocketAttribute.local_port)
        tasks.start_soon(listener.serve, proxy.serve)
        yield proxy
        tasks.cancel_scope.cancel()  # closes every connection, silent ones included


@asynccontextmanager
async def serving(database: URL) -> AsyncIterator[tuple[AsyncClient, SilenceableProxy]]:
    """The app, on one connection per pool, reaching `database` through a proxy."""
    async with silenceable_proxy(database) as proxy:
        settings = settings_for(
            database.set(host="127.0.0.1", port=proxy.port),
            db_statement_timeout=STATEMENT_TIMEOUT,
            # One connection per pool: a request after a silent one must get that
            # connection, or its replacement.
            db_pool_size=1,
            db_read_pool_size=1,
            db_max_overflow=0,
            db_pool_timeout=2,  # a slot never given back: a 503 soon, rather than a hang
        )
        app = create_app(settings)

        @app.get("/backend")
        async def backend_pid(session: ReadSession) -> int:
            pid: int = await session.scalar(text("SELECT pg_backend_pid()"))
            return pid

        @app.get("/falls-silent")
        async def fall_silent_midway(session: ReadSession) -> None:
            await session.execute(text("SELECT 1"))  # the connection answers...
            proxy.fall_silent()  # ...then the network loses it
            await session.execute(text("SELECT 1"))

        async with app_client(app) as client:
            yield client, proxy


async def server_pids(database: URL) -> set[int]:
    """The server processes of `database`'s sessions, seen on a direct connection."""
    connection = await asyncpg.connect(**asyncpg_connect_args(database))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return {row["pid"] for row in rows}


def warnings_naming(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and name in record.getMessage()
    ]


async def test_a_read_whose_connection_falls_silent_is_a_504_after_the_command_timeout(
    fresh_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with serving(fresh_database) as (client, _):
        started = time.monotonic()
        with anyio.fail_after(ANSWER_WITHIN):
            response = await client.get("/falls-silent")
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json() == NO_ANSWER
    assert "retry-after" not in response.headers
    assert elapsed >= COMMAND_TIMEOUT, "answered before the driver's timeout: not the silence"
    assert elapsed < COMMAND_TIMEOUT + 1.0, "the discarded connection's close was waited for"
    assert warnings_naming(caplog, "DatabaseNoAnswerError") == [
        "GET /falls-silent answered 504: DatabaseNoAnswerError"
    ]


async def test_the_silent_connection_is_discarded_and_the_next_read_gets_a_new_one(
    fresh_database: URL,
) -> None:
    async with serving(fresh_database) as (client, _):
        before = (await client.get("/backend")).json()
        connects: list[object] = []
        reads = sessionmanager.read_engine  # GET requests read through it
        event.listen(reads.sync_engine, "connect", lambda *_: connects.append(1))

        silent = await client.get("/falls-silent")  # the old connection stays silent
        after = await client.get("/backend")

        pool = reads.pool
        slots = (pool.checkedout(), pool.checkedin())  # type: ignore[attr-defined]
        # The server never heard of the silence: its session for the old connection lives.
        pids_on_server = await server_pids(fresh_database)

    assert silent.status_code == 504
    assert after.status_code == 200
    assert after.json() != before, "the silent connection was handed to the next request"
    assert connects == [1]
    assert slots == (0, 1)
    assert {before, after.json()} <= pids_on_server


async def test_a_write_whose_commit_gets_no_answer_is_a_502_and_may_have_been_stored(
    fresh_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    name = "silent"
    create_probe = router.url_path_for("create_probe")
    async with serving(fresh_database) as (client, proxy):
        proxy.fall_silent_at_commit()
        started = time.monotonic()
        with anyio.fail_after(ANSWER_WITHIN):
            response = await client.post(create_probe, json={"name": name})
        elapsed = time.monotonic() - started
        writes = sessionmanager.engine.pool
        slots = (writes.checkedout(), writes.checkedin())  # type: ignore[attr-defined]

    connection = await asyncpg.connect(**asyncpg_connect_args(fresh_database))
    try:
        stored = await connection.fetchval("SELECT count(*) FROM probe WHERE name = $1", name)
    finally:
        await connection.close()

    assert response.status_code == 502
    assert response.json() == OUTCOME_UNKNOWN
    assert "retry-after" not in response.headers
    assert COMMAND_TIMEOUT <= elapsed < COMMAND_TIMEOUT + 1.0
    # The server got the COMMIT and stored the row: only its answer was lost.
    assert stored == 1
    assert slots == (0, 1)
    assert warnings_naming(caplog, "CommitOutcomeUnknownError") == [
        f"POST {create_probe} answered 502: CommitOutcomeUnknownError"
    ]
