"""An open-loop load generator: requests at a fixed rate, latency counted from when each was due.

wrk keeps N requests in flight (a closed loop): when the app stalls, wrk stops sending too,
and the requests it did not send never show the stall in its percentiles (coordinated
omission). Here request i is due at start + i / rate, whatever happened before it: it waits
for a free connection if none is, and its latency runs from when it was due, as wrk2 and
vegeta measure it. Neither is packaged by Debian, so this is the small one we need, on
uvloop and httptools (which the app already depends on).
"""

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools
import uvloop

# Each connection is closed after this many requests and opened again: uvicorn's workers
# share one listening socket, and long-lived connections could all land on one worker.
REQUESTS_PER_CONNECTION = 100
TIMEOUT_SECONDS = 10


@dataclass
class PacedRun:
    rate: float  # asked for, requests/s
    seconds: float  # from the first request due to the last answered
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def achieved_rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]


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
    loop = asyncio.get_running_loop()
    due_requests: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        connection = _Connection(host, port)
        while (item := await due_requests.get()) is not None:
            index, due = item
            try:
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    status = await connection.send(request_for(index))
            except (OSError, TimeoutError):
                errors += 1
                await connection.close()
                continue
            latencies.append((loop.time() - due) * 1000)
            if not 200 <= status < 300:
                errors += 1
        await connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = loop.time() + 0.1
    for index in range(round(rate * seconds)):
        due = start + index / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        due_requests.put_nowait((index, due))
    for _ in workers:
        due_requests.put_nowait(None)
    await asyncio.gather(*workers)
    return PacedRun(rate=rate, seconds=loop.time() - start, latencies_ms=latencies, errors=errors)


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
