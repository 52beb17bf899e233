"""What a served app answers to hostile JSON bodies, and what liveness does meanwhile.

    python -m bench.hostile_bodies --url http://127.0.0.1:8000 [--repeat 3]

Sends each body of `CASES` to POST /users of an app already serving at `--url` (one
worker: `WORKERS=1 python main.py`), and prints per case the status, the answer's size and
the request's time (median over the repeats); then the longest GET /health/live on the
same worker took, sent one after another by another process while the
100,000-unknown-keys body was refused.
Each body gets an email of its own: the valid one (an emoji name) is stored.
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid

import httpx

UNKNOWN_KEYS = 100_000
DEPTH = 100_000


def user(name: str, extra: str = "") -> bytes:
    email = f"hostile-{uuid.uuid4().hex[:12]}@example.org"
    return f'{{"email": "{email}", "name": {name}{extra}}}'.encode()


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


def many_unknown_keys(count: int) -> bytes:
    """`{"k0":0,"k1":0,...}`, keys in base 36: 100,000 of them fit in 0.93 MB, under the
    1 MiB MAX_BODY_SIZE."""
    return ("{" + ",".join(f'"k{base36(i)}":0' for i in range(count)) + "}").encode()


def cases() -> dict[str, bytes]:
    """Name -> raw body; built afresh per run, so that no email is taken twice."""
    return {
        "NaN in a field": user("NaN"),
        "Infinity in a field": user("Infinity"),
        "-Infinity in a field": user("-Infinity"),
        "1e400 in a field": user("1e400"),
        "NaN in an unknown key": user('"Ann"', ', "x": NaN'),
        "Infinity in an unknown key": user('"Ann"', ', "x": Infinity'),
        "1e400 in an unknown key": user('"Ann"', ', "x": 1e400'),
        "NaN in a list": user("[NaN]"),
        "-Infinity nested in a list": user('"Ann"', ', "x": {"y": [1, -Infinity]}'),
        "lone surrogate in a value": user('"\\ud800"'),
        "lone surrogate in a key": user('"Ann"', ', "\\udc00": 1'),
        "surrogate pair (emoji), valid": user('"\\ud83d\\ude00"'),
        f"{DEPTH:,} nested [": b"[" * DEPTH + b"]" * DEPTH,
        f"{UNKNOWN_KEYS:,} unknown keys": many_unknown_keys(UNKNOWN_KEYS),
    }


async def post(client: httpx.AsyncClient, body: bytes) -> tuple[int, int, float]:
    started = time.perf_counter()
    answer = await client.post("/users", content=body, headers={"content-type": "application/json"})
    return answer.status_code, len(answer.content), time.perf_counter() - started


# Run in a process of its own, so that the client's work sending the body is not counted.
_PROBER = """
import sys, time, httpx
url, seconds = sys.argv[1], float(sys.argv[2])
longest = 0.0
with httpx.Client(base_url=url, timeout=30) as client:
    client.get("/health/live")
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        assert client.get("/health/live").status_code == 200
        longest = max(longest, time.monotonic() - started)
        time.sleep(0.005)
print(longest)
"""


async def liveness_while_refused(client: httpx.AsyncClient, body: bytes) -> float:
    """The longest GET /health/live took, sent one after another by another process from
    just before `body` was sent until after it was refused."""
    started = time.perf_counter()
    await post(client, body)
    seconds = time.perf_counter() - started
    prober = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PROBER,
        str(client.base_url),
        str(min(seconds * 2 + 0.2, 30)),
        stdout=asyncio.subprocess.PIPE,
    )
    assert prober.stdout is not None
    assert await prober.stdout.readline() == b"ready\n"
    await asyncio.sleep(0.05)  # a few probes of the idle worker first
    await post(client, body)
    output, _ = await prober.communicate()
    return float(output)


async def main(url: str, repeat: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        print(f"{'case':32} {'status':>6} {'bytes':>10} {'seconds':>8}  (median of {repeat})")
        for name in cases():
            runs = [await post(client, cases()[name]) for _ in range(repeat)]
            status, size, _ = runs[-1]
            took = statistics.median(run[2] for run in runs)
            print(f"{name:32} {status:>6} {size:>10,} {took:>8.3f}")
        many_keys = cases()[f"{UNKNOWN_KEYS:,} unknown keys"]
        live = [await liveness_while_refused(client, many_keys) for _ in range(repeat)]
        print(
            f"GET /health/live while {UNKNOWN_KEYS:,} unknown keys are refused: "
            f"at most {statistics.median(live) * 1000:.0f} ms (median of {repeat} runs), "
            f"{max(live) * 1000:.0f} ms in the worst run"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.url, arguments.repeat))
