"""What a served app does with hostile clients on the wire: one huge header, a head or a
body trickled, a connection that sends nothing, a 20 MB body sent without waiting, and more
connections than a worker serves. Each case prints its outcome, its time and, for the
header, the server's memory.

    .venv/bin/python -m bench.wire_limits --url http://127.0.0.1:8000 --pid PID

PID is the serving process (with WORKERS=1, `python main.py` itself); the app needs a
`POST /users` taking JSON. The trickles run side by side, for up to --patience seconds.
"""

import argparse
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit


def memory_mib(pid: int) -> str:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    kib = {line.split(":")[0]: line.split()[1] for line in lines if line.startswith("Vm")}
    return f"RSS {int(kib['VmRSS']) // 1024} MiB (peak {int(kib['VmHWM']) // 1024})"


def answer(sock: socket.socket) -> str:
    """The status line the server sent, or what happened instead."""
    received = b""
    try:
        while data := sock.recv(65_536):
            received += data
    except OSError as exc:
        if not received:
            return f"{type(exc).__name__}"
    return received.split(b"\r\n", 1)[0].decode() if received else "closed, no answer"


def huge_header(host: str, port: int, pid: int, mib: int) -> str:
    before = memory_mib(pid)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=60) as sock:
        try:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: b\r\nX-Big: ")
            chunk = b"a" * (1024 * 1024)
            for _ in range(mib):
                sock.sendall(chunk)
            sock.sendall(b"\r\nConnection: close\r\n\r\n")
        except OSError as exc:
            return f"send failed ({type(exc).__name__}), {answer(sock)}"
        outcome = answer(sock)
    took = time.monotonic() - started
    time.sleep(1)
    return f"{outcome} in {took:.1f} s; {before} -> {memory_mib(pid)}"


def trickle(host: str, port: int, opening: bytes, piece: bytes, patience: float) -> str:
    """Send `opening`, then `piece` every second; when did the server answer or close?"""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=patience + 10) as sock:
        sock.sendall(opening)
        while time.monotonic() - started < patience:
            readable, _, _ = select.select([sock], [], [], 1)
            if readable:
                break
            try:
                sock.sendall(piece)
            except OSError:
                break
        else:
            return f"still open after {patience:.0f} s"
        took = time.monotonic() - started
        sock.settimeout(10)
        return f"{answer(sock)} after {took:.1f} s"


def blind_upload(url: str, size: int) -> str:
    # urllib sends Connection: close and no Expect: 100-continue.
    upload = urllib.request.Request(
        f"{url}/users", data=b" " * size, headers={"Content-Type": "application/json"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(upload, timeout=60) as response:
            outcome = str(response.status)
    except urllib.error.HTTPError as exc:
        outcome = f"{exc.code} read"
    except urllib.error.URLError as exc:
        outcome = f"{type(exc.reason).__name__}"
    return f"{outcome} in {time.monotonic() - started:.2f} s"


def many_connections(host: str, port: int, count: int) -> str:
    held, statuses = [], []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=30)
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: b\r\n\r\n")
        statuses.append(sock.recv(65_536).split(b" ", 2)[1].decode() or "closed")
        held.append(sock)
    for sock in held:
        sock.close()
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    first_refused = next((i for i, s in enumerate(statuses) if s != "200"), None)
    return f"{counts}; first refusal on connection {first_refused}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--header-mib", type=int, default=191)
    parser.add_argument("--patience", type=float, default=40)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = b"GET /health/live HTTP/1.1\r\n"
    post = b"POST /users HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
    cases: dict[str, Callable[[], str]] = {
        "head trickled": lambda: trickle(host, port, head, b"X-A: b\r\n", args.patience),
        "body trickled": lambda: trickle(
            host, port, post + b"Content-Length: 100\r\n\r\n{", b" ", args.patience
        ),
        "nothing sent": lambda: trickle(host, port, b"", b"", args.patience),
    }
    results: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda n=name, c=case: results.update({n: c()}))
        for name, case in cases.items()
    ]
    for thread in threads:
        thread.start()
    print(f"header {args.header_mib} MiB:", huge_header(host, port, args.pid, args.header_mib))
    print("20 MB body, no waiting:", blind_upload(args.url, 20 * 1024 * 1024))
    for thread in threads:
        thread.join()
    for name in cases:
        print(f"{name}:", results[name])
    print(f"{args.connections} connections:", many_connections(host, port, args.connections))


if __name__ == "__main__":
    main()
