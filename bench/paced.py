"""An open-loop load generator: requests at a fixed rate, latency counted from when each was due.

wrk keeps N requests in flight (a closed loop): when the app stalls, wrk stops sending too,
and the requests it did not send never show the stall in its percentiles (coordinated
omission). Here request i is due at start + i / rate, whatever happened before it: it is
queued then, waits for a free connection if none is, and its latency runs from when it was
queued, as wrk2 and vegeta measure it. Neither is packaged by Debian, so this is the small
one we need, on uvloop and httptools (which the app already depends on).

The event loop's timers have millisecond resolution, so a request is queued up to ~1 ms
after it was due: that lateness is this generator's, not the app's, and is reported apart
(`late_ms`) instead of being added to the latencies.
"""

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools
import uvloop

# Each connection is closed after this many requests and opened again: uvicorn's workers
# share one listening socket, and long-lived connections could all land on one worker.
REQUESTS_PER_CONNECTION = 100
# uvloop's loop.time() is libuv's cached millisecond clock: too coarse for latencies.
clock = time.perf_counter
TIMEOUT_SECONDS = 10


@dataclass
class PacedRun:
    rate: float  # asked for, requests/s
    seconds: float  # from the first request due to the last answered
    latencies_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # queued after it was due, by this much
    errors: int = 0

    @property
    def achieved_rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, p: int, of: str = "latencies_ms") -> float:
        values: list[float] = getattr(self, of)
        return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


class _Response:
    """httptools' callbacks: all we need is to know when the response is complete."""

    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._sent = 0

    async def send(self, request: bytes) -> int:
        """Send one request, read its whole response, return its status code."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        writer.write(request)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        while not response.complete:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
        self._sent += 1
        if self._sent % REQUESTS_PER_CONNECTION == 0:
            await self.close()
        return int(parser.get_status_code())

    async def close(self) -> None:
        if self._streams is not None:
            _, writer = self._streams
            self._streams = None
            writer.close()
            await writer.wait_closed()


async def _run(
    host: str,
    port: int,
    request_for: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int,
) -> PacedRun:
    due_requests: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    late: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        connection = _Connection(host, port)
        while (item := await due_requests.get()) is not None:
            index, queued = item
            try:
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    status = await connection.send(request_for(index))
            except (OSError, TimeoutError):
                errors += 1
                await connection.close()
                continue
            latencies.append((clock() - queued) * 1000)
            if not 200 <= status < 300:
                errors += 1
        await connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = clock() + 0.1
    for index in range(round(rate * seconds)):
        due = start + index / rate
        if due > clock():
            await asyncio.sleep(due - clock())
        queued = clock()
        late.append((queued - due) * 1000)
        due_requests.put_nowait((index, queued))
    for _ in workers:
        due_requests.put_nowait(None)
    await asyncio.gather(*workers)
    return PacedRun(
        rate=rate, seconds=clock() - start, latencies_ms=latencies, late_ms=late, errors=errors
    )


def paced(
    url: str,
    request_for: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int = 64,
) -> PacedRun:
    """Send `request_for(i)` (raw HTTP/1.1 bytes) at `rate` per second for `seconds`."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return uvloop.run(_run(host, int(port), request_for, rate, seconds, connections))


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
