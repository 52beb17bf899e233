"""What pg_runtime.json_bodies adds to each request, in-process, in microseconds.

    python -m bench.json_bodies_overhead [--calls 50000] [--rounds 5]

Calls an ASGI app that reads the body and answers, bare and behind StrictJsonBodies, in
alternated rounds: a GET without a body (a header scan) and a POST of a user's 44-byte
JSON body (read ahead, parsed strictly, counted, replayed). Prints per kind the median
over rounds of the added time per call, with the lowest and highest.
"""

import argparse
import asyncio
import statistics
import time

from pg_runtime.json_bodies import StrictJsonBodies
from starlette.types import Message, Receive, Scope, Send

BODY = b'{"email": "ann@example.org", "name": "Ann"}'
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"wrk"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip"),
    (b"connection", b"keep-alive"),
]
KINDS = {
    "GET, no body": HEADERS,
    "POST, 44-byte JSON body": [
        *HEADERS,
        (b"content-type", b"application/json"),
        (b"content-length", b"44"),
    ],
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] == "POST":
        await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def receive() -> Message:
    return {"type": "http.request", "body": BODY, "more_body": False}


async def send(message: Message) -> None:
    pass


async def per_call(asgi: object, headers: list[tuple[bytes, bytes]], calls: int) -> float:
    assert callable(asgi)
    scope = {"type": "http", "method": "POST" if len(headers) > len(HEADERS) else "GET"}
    started = time.perf_counter()
    for _ in range(calls):
        await asgi({**scope, "headers": headers}, receive, send)
    return (time.perf_counter() - started) / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    strict = StrictJsonBodies(app, max_values=1000)
    for kind, headers in KINDS.items():
        added = []
        for _ in range(rounds):
            bare = await per_call(app, headers, calls)
            added.append(await per_call(strict, headers, calls) - bare)
        print(
            f"{kind:24} +{statistics.median(added):.1f} µs per request "
            f"({min(added):.1f} to {max(added):.1f} over {rounds} rounds)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rounds))
