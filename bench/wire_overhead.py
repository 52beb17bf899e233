"""What the wire limits (pg_runtime/bounded_http.py) add to a request: uvicorn's httptools
protocol and the bounded one parse the same kept-alive GETs and run an app that answers at
once, in-process on one event loop, alternated rounds; prints CPU microseconds per request
(the median and the fastest round: on a shared machine the fastest is the least disturbed).

    .venv/bin/python -m bench.wire_overhead
"""

import asyncio
import statistics
import time
from typing import Any

import uvloop
from pg_runtime.bounded_http import WireLimits, bounded_protocol
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

REQUESTS = 20_000
ROUNDS = 9
GET = b"GET /users/1 HTTP/1.1\r\nHost: api\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class Socket(asyncio.Transport):
    """A transport that accepts writes and drops them: the socket's cost is the same for
    both protocols."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_request_us(protocol_class: Any) -> float:
    config = Config(app, lifespan="off", access_log=False, log_level="warning")
    config.load()
    state = ServerState()
    protocol = protocol_class(config=config, server_state=state, app_state={})
    protocol.connection_made(Socket())
    started = time.process_time()
    for _ in range(REQUESTS):
        protocol.data_received(GET)
        await asyncio.sleep(0)  # the app's task answers
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / REQUESTS * 1e6


async def main() -> None:
    bounded = bounded_protocol(WireLimits(32_768, 10.0, 30.0))
    plain_rounds, bounded_rounds = [], []
    for _ in range(ROUNDS):
        plain_rounds.append(await per_request_us(HttpToolsProtocol))
        bounded_rounds.append(await per_request_us(bounded))
    print(f"{REQUESTS} kept-alive GETs x {ROUNDS} alternated rounds, CPU per request:")
    for summary in (statistics.median, min):
        plain, with_limits = summary(plain_rounds), summary(bounded_rounds)
        print(
            f"  {summary.__name__:>6}: uvicorn httptools {plain:.2f} us, "
            f"bounded {with_limits:.2f} us (+{with_limits - plain:.2f} us)"
        )


if __name__ == "__main__":
    uvloop.run(main())
