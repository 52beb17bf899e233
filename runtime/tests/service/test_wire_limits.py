"""What a client may send to `python -m probe`, on real sockets: a head too large (431), a
head or a body sent too slowly (408), one connection more than MAX_CONNECTIONS (503), an
idle kept-alive connection (closed); and a body over MAX_BODY_SIZE sent without waiting
for an answer, whose 413 the client reads (pg_runtime/bounded_http.py).

The tests are clients of a server in another process: they block on their sockets, as a
client does, though async (anyio) for the database fixture they share."""

import json
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import pytest
from anyio import to_thread
from pg_harness.served import Served
from pg_harness.server import RunDatabases
from pg_runtime.testing import role_env
from probe.settings import ProbeSettings
from served_probe import peak_memory_kib, served_probe
from sqlalchemy.engine import URL

# One worker starts the servers, however the run is split (--dist=loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wire_limits")]

TIMEOUT = 1  # REQUEST_HEADER_TIMEOUT, REQUEST_BODY_TIMEOUT and KEEP_ALIVE_TIMEOUT, seconds
MAX_CONNECTIONS = 4
# The time a refusal may take beyond its bound: the answer, on a busy 2-core machine.
SLACK = 2.0
HEADER_LIMIT = 16_384  # MAX_HEADER_SIZE
TWENTY_MB = 20 * 1024 * 1024


@pytest.fixture(scope="module")
async def database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    async with run_databases.database(f"{worker_name}_wire_limits") as url:
        yield url


def env_for(database: URL, **settings: object) -> dict[str, str]:
    # The defaults given too: a value in the environment or .env must not count.
    defaults = {
        "max_header_size": HEADER_LIMIT,
        "max_body_size": ProbeSettings.model_fields["max_body_size"].default,
        "request_header_timeout": TIMEOUT,
        "request_body_timeout": TIMEOUT,
        "keep_alive_timeout": TIMEOUT,
        "max_connections": 100,
    }
    # As production runs it: the app and reader roles, the owner for migrations only.
    return role_env(database) | {
        name.upper(): str(value) for name, value in (defaults | settings).items()
    }


@pytest.fixture(scope="module")
def served(database: URL) -> Iterator[Served]:
    with served_probe(env_for(database)) as served:
        yield served


@pytest.fixture(scope="module")
def served_with_few_connections(database: URL) -> Iterator[Served]:
    """A server of its own: the other tests' connections, closing, must not count."""
    with served_probe(env_for(database, max_connections=MAX_CONNECTIONS)) as served:
        yield served


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=30)


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as a close)."""
    received = b""
    while True:
        try:
            data = sock.recv(65_536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def trickle_until_answered(sock: socket.socket, piece: bytes, seconds: float) -> float:
    """Send `piece` every 0.2 s until the server answers or closes; the seconds it took
    (`seconds` if it never did)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            break
        try:
            sock.sendall(piece)
        except OSError:
            break
    return time.monotonic() - started


def request(path: str, *headers: str, close: bool = True) -> bytes:
    """A GET of `path` with `headers`, asking the server to close after its answer."""
    lines = [f"GET {path} HTTP/1.1\r\n", "Host: probe\r\n", *headers]
    return "".join([*lines, "Connection: close\r\n" if close else "", "\r\n"]).encode()


def padding(size: int) -> str:
    """A header of `size` bytes."""
    return "X-Pad: " + "a" * (size - len("X-Pad: \r\n")) + "\r\n"


def answer_to(served: Served, sent: bytes) -> bytes:
    """What the server answers to `sent` (`Connection: close`) on a connection of its own."""
    with connect(served) as sock:
        sock.sendall(sent)
        return read_to_close(sock)


async def test_head_over_the_limit_is_refused_with_431_without_being_buffered(
    served: Served, url_for: Callable[..., str]
) -> None:
    path = url_for("read_liveness")
    body = json.dumps({"name": "large-body@example.org"}).encode() + b" " * (4 * HEADER_LIMIT)
    post = (
        f"POST {url_for('create_probe')} HTTP/1.1\r\nHost: probe\r\n"
        "Connection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert served.process is not None
    peak_before = peak_memory_kib(served.process.pid)

    # 32 MiB, for the 191 MiB header the server once held whole.
    far_over = answer_to(served, request(path, padding(32 * 1024 * 1024)))
    # Sent in one read each: only the head counts, to the byte.
    just_over = answer_to(served, request(path, padding(HEADER_LIMIT)))
    just_under = answer_to(served, request(path, padding(HEADER_LIMIT - 200)))
    small_head_large_body = answer_to(served, post + body)

    assert status_of(far_over) == 431
    assert far_over.endswith(b"Request Header Fields Too Large")
    grown = peak_memory_kib(served.process.pid) - peak_before
    assert grown < 4 * 1024, f"the server's peak memory grew by {grown} KiB"
    assert status_of(just_over) == 431
    assert status_of(just_under) == 200
    assert status_of(small_head_large_body) == 201


async def test_head_sent_too_slowly_is_answered_408_and_closed(
    served: Served, url_for: Callable[..., str]
) -> None:
    with connect(served) as sock:
        sock.sendall(f"GET {url_for('read_liveness')} HTTP/1.1\r\n".encode())
        took = trickle_until_answered(sock, b"X-Slow: a\r\n", seconds=TIMEOUT + 5)
        assert took < TIMEOUT + SLACK, f"still reading the head after {took:.1f} s"
        answer = read_to_close(sock)

    assert status_of(answer) == 408


async def test_connection_that_sends_nothing_is_closed(served: Served) -> None:
    with connect(served) as sock:
        took = trickle_until_answered(sock, b"", seconds=TIMEOUT + 5)
        assert took < TIMEOUT + SLACK, f"still open after {took:.1f} s"
        answer = read_to_close(sock)

    assert answer == b""


async def test_body_sent_too_slowly_is_answered_408_and_closed(
    served: Served, url_for: Callable[..., str]
) -> None:
    head = (
        f"POST {url_for('create_probe')} HTTP/1.1\r\nHost: probe\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    with connect(served) as sock:
        sock.sendall(head.encode())
        took = trickle_until_answered(sock, b" ", seconds=TIMEOUT + 5)
        assert took < TIMEOUT + SLACK, f"still reading the body after {took:.1f} s"
        answer = read_to_close(sock)

    assert status_of(answer) == 408
    # The app saw its client leave, which is no error of its own.
    assert "ERROR" not in served.log(), served.log()


async def test_idle_kept_alive_connection_is_closed_after_keep_alive_timeout(
    served: Served, url_for: Callable[..., str]
) -> None:
    with connect(served) as sock:
        sock.sendall(request(url_for("read_liveness"), close=False))
        readable, _, _ = select.select([sock], [], [], 10)
        assert readable
        started = time.monotonic()
        answer = read_to_close(sock)
        took = time.monotonic() - started

    assert status_of(answer) == 200
    assert took < TIMEOUT + SLACK, f"idle connection open for {took:.1f} s"


async def test_connection_answered_413_before_its_body_arrived_is_closed_when_idle(
    served: Served, url_for: Callable[..., str]
) -> None:
    # The answer came at the head; the body that followed cancelled uvicorn's idle timer.
    size = ProbeSettings.model_fields["max_body_size"].default + 1
    head = (
        f"POST {url_for('create_probe')} HTTP/1.1\r\nHost: probe\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    )
    with connect(served) as sock:
        sock.sendall(head.encode() + b" " * size)
        answer = b""
        while not answer.endswith(b"Content Too Large"):
            answer += sock.recv(65_536)
        started = time.monotonic()
        sock.settimeout(TIMEOUT + 5)
        try:
            after_the_answer: bytes | None = sock.recv(1)
        except TimeoutError:
            after_the_answer = None  # still open
        idle_for = time.monotonic() - started

    assert status_of(answer) == 413
    assert after_the_answer == b"", "the idle connection was not closed"
    assert idle_for < TIMEOUT + SLACK, f"idle connection open for {idle_for:.1f} s"


async def test_connection_beyond_max_connections_is_answered_503_and_the_others_served(
    served_with_few_connections: Served, url_for: Callable[..., str]
) -> None:
    served = served_with_few_connections
    path = url_for("read_liveness")
    held = [connect(served) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:
            sock.sendall(request(path, close=False))
            assert status_of(sock.recv(65_536)) == 200  # and the connection is kept

        with connect(served) as extra:
            extra.sendall(request(path))
            refused = read_to_close(extra)

        held.pop().close()
        await anyio.sleep(0.5)  # the server sees the close
        with connect(served) as another:
            another.sendall(request(path))
            served_again = read_to_close(another)
    finally:
        for sock in held:
            sock.close()

    assert status_of(refused) == 503
    assert refused.endswith(b"Service Unavailable")
    assert status_of(served_again) == 200


async def test_client_sending_20_mb_without_waiting_reads_its_413(
    served: Served, url_for: Callable[..., str]
) -> None:
    # urllib sends `Connection: close` and no `Expect: 100-continue`: the server answers
    # before the body has arrived and closes; its client is still writing.
    upload = urllib.request.Request(
        served.url + url_for("create_probe"),
        data=b" " * TWENTY_MB,
        headers={"Content-Type": "application/json"},
    )

    with pytest.raises(urllib.error.HTTPError) as refused:
        await to_thread.run_sync(lambda: urllib.request.urlopen(upload, timeout=30))

    assert refused.value.code == 413
    assert refused.value.read() == b"Content Too Large"
