"""The app's own CPU per request, in this process (ASGI called directly, no socket, no
client): GET /users/{id} through the ORM against bench/raw_app.py's asyncpg route, and a
heavy user's pages of notes.

    .venv/bin/python -m bench.request_cpu [--requests 2000] [--rounds 7] [--profile]
                                          [--built-per-request] [--skip-heavy]

On a shared machine requests/s say more about the neighbours than about the code: CPU
time spent in this process per request does not count the time others hold the cores
(nor PostgreSQL's, which runs elsewhere). The implementations alternate within each
round, in a rotating order; each figure is the median over rounds, with the lowest and
highest. Served (bench/throughput.py), each request also costs uvicorn's HTTP work, the
same for both, so the served ORM/raw ratio is higher than the ratio here.
`--built-per-request` adds GET /users/{id} written with `session.get`, as it was before
the read routes' statements were built once; `--profile` adds the own CPU time of each
package per request, under cProfile.

Then a heavy user (300,000 notes, numbered after 30,000 of a crowd's) and a light one
(10 notes, numbered after everyone's): wall time of a page of each one's notes, at offset
0 and at the deepest offset (MAX_OFFSET), and of GET /users/{id} of each.

The server: TEST_DATABASE_URL if set (a database of our own there, dropped at the end),
else an embedded throw-away one.
"""

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import APIRouter, HTTPException
from pg_harness.databases import drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_runtime.database_url import to_asyncpg_url
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.dependencies import ReadSession
from api.schemas.users import UserRead
from bench.throughput import USERS, describe, rotated, with_database
from orm.models import User

HEAVY_NOTES = 300_000
CROWD_NOTES = 30_000
LIGHT_NOTES = 10

Call = Callable[[str], Awaitable[int]]


def asgi_caller(app: Any) -> Call:
    """`await call("/users/1")`: the app's answer's status, the app called as a server
    would call it, with nothing of a client's around it."""

    async def call(target: str) -> int:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    return call


async def cpu_us_per_request(call: Call, paths: list[str]) -> float:
    started = time.process_time()
    for path in paths:
        status = await call(path)
        assert status == 200, (path, status)
    return (time.process_time() - started) / len(paths) * 1e6


async def plant_heavy_user(database: URL) -> tuple[int, int]:
    """The heavy user's id and the light one's, their notes committed and analysed."""
    engine = create_async_engine(database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            users = await connection.execute(
                text(
                    "INSERT INTO user_account (email, name) "
                    "SELECT name || '@heavy.bench.example.org', name "
                    "FROM unnest(ARRAY['crowd', 'heavy', 'light']) AS name RETURNING id"
                )
            )
            crowd, heavy, light = users.scalars().all()
            plant = text(
                "INSERT INTO note (user_id, title) SELECT :user_id, 'note ' || n "
                "FROM generate_series(1, :count) AS n"
            )
            for user_id, count in (
                (crowd, CROWD_NOTES),
                (heavy, HEAVY_NOTES),
                (light, LIGHT_NOTES),
            ):
                await connection.execute(plant, {"user_id": user_id, "count": count})
            await connection.commit()
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE note"))
    finally:
        await engine.dispose()
    return heavy, light


# GET /users/{id} as written before the read routes' statements were built once at import
# (api/routers/users.py): session.get builds and annotates a new statement at each call.
built_per_request = APIRouter(prefix="/built-per-request")


@built_per_request.get("/users/{user_id}")
async def read_user_built_per_request(user_id: int, session: ReadSession) -> UserRead:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, "user not found")
    return UserRead.model_validate(user)


async def measure(database: URL, args: argparse.Namespace) -> None:
    os.environ |= {
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "warning",
    }
    from bench import raw_app  # builds its app from the environment, as a worker does

    async with LifespanManager(raw_app.app):
        call = asgi_caller(raw_app.app)
        chooser = iter(range(10**9))

        def paths(prefix: str) -> list[str]:
            return [f"{prefix}/users/{1 + next(chooser) % USERS}" for _ in range(args.requests)]

        prefixes = {"ORM": "", "raw": "/raw"}
        if args.built_per_request:
            raw_app.app.include_router(built_per_request)
            prefixes["ORM, session.get"] = built_per_request.prefix
        for prefix in prefixes.values():  # caches, prepared statements, pools filled
            await cpu_us_per_request(call, paths(prefix))
        cpu: dict[str, list[float]] = {name: [] for name in prefixes}
        for number in range(args.rounds):
            for name in rotated(list(cpu), number):
                cpu[name].append(await cpu_us_per_request(call, paths(prefixes[name])))
                print(f"round {number + 1} GET /users/{{id}} {name:16} {cpu[name][-1]:7.0f} µs")
        print(
            f"\nGET /users/{{id}}, the app's CPU µs per request, {args.rounds} rounds of "
            f"{args.requests}: median [lowest-highest]"
        )
        for name, figures in cpu.items():
            print(f"  {name:16} {describe(figures)}")
        for name in cpu.keys() - {"raw"}:
            ratios = [raw / orm for orm, raw in zip(cpu[name], cpu["raw"], strict=True)]
            print(f"  raw / {name:16} {describe(ratios)}  (its share of raw's throughput)")

        if args.profile:
            print_profiles(
                {
                    name: await profile(call, paths(prefix))
                    for name, prefix in (("ORM", ""), ("raw", "/raw"))
                }
            )

        if args.skip_heavy:
            return
        heavy, light = await plant_heavy_user(database)
        await heavy_figures(call, heavy, light, args.rounds)


async def profile(call: Call, paths: list[str]) -> dict[str, float]:
    """CPU µs per request spent in each package's own code (cProfile's own time, in CPU
    time: wall time would count each wait for PostgreSQL), for `paths`."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    await cpu_us_per_request(call, paths)
    profiler.disable()
    spent: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        package = package_of(filename)
        spent[package] = spent.get(package, 0) + own / len(paths) * 1e6
    return spent


def package_of(filename: str) -> str:
    """`sqlalchemy`, `fastapi`, ... from a module's path; `python` for the standard library."""
    parts = Path(filename).parts
    for marker in ("site-packages", "src"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].removesuffix(".py")
    if "bench" in parts or "api" in parts or "app" in parts or "orm" in parts:
        return "this project"
    return "python" if filename.startswith(("/", "<frozen")) else filename


def print_profiles(profiles: dict[str, dict[str, float]]) -> None:
    names = list(profiles)
    packages = sorted(
        {package for spent in profiles.values() for package in spent},
        key=lambda package: -max(spent.get(package, 0) for spent in profiles.values()),
    )
    print(
        "\nOwn CPU µs per request by package, under cProfile (which inflates every figure, "
        "calls most)"
    )
    print(f"  {'package':24}" + "".join(f"{name:>10}" for name in names))
    for package in packages[:16]:
        print(f"  {package:24}" + "".join(f"{profiles[n].get(package, 0):10.0f}" for n in names))
    print(f"  {'total':24}" + "".join(f"{sum(profiles[n].values()):10.0f}" for n in names))


async def heavy_figures(call: Call, heavy: int, light: int, rounds: int) -> None:
    from api.paging import MAX_OFFSET

    deepest = f"offset={MAX_OFFSET}"
    targets = {
        "heavy's notes, offset 0": f"/notes?user_id={heavy}&limit=20",
        f"heavy's notes, {deepest}": f"/notes?user_id={heavy}&limit=20&{deepest}",
        "light's notes, offset 0": f"/notes?user_id={light}&limit=20",
        "GET /users/{heavy}": f"/users/{heavy}",
        "GET /users/{light}": f"/users/{light}",
    }
    repeat = 50  # past the point where PostgreSQL may switch a prepared statement's plan
    wall: dict[str, list[float]] = {name: [] for name in targets}
    for number in range(rounds):
        for name in rotated(list(targets), number):
            started = time.perf_counter()
            for _ in range(repeat):
                assert await call(targets[name]) == 200
            wall[name].append((time.perf_counter() - started) / repeat * 1000)
    print(
        f"\nA heavy user ({HEAVY_NOTES:,} notes after {CROWD_NOTES:,} of others) and a light "
        f"one ({LIGHT_NOTES}): ms per request, wall time, median [lowest-highest]"
    )
    for name, figures in wall.items():
        print(f"  {name:34} {describe(figures)}")


async def main_async(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        given = os.environ.get("TEST_DATABASE_URL")
        if given:
            admin_url = to_asyncpg_url(given)
        else:
            server = EmbeddedPostgres(
                Path(tempfile.mkdtemp(prefix="bench-postgres-")), throwaway=True
            )
            stack.callback(server.stop)
            admin_url = server.start()
        database = await with_database(admin_url)
        try:
            await measure(database, args)
        finally:
            await drop_database(admin_url, database.database or "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per round (2000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternated rounds (7)")
    parser.add_argument("--profile", action="store_true", help="cProfile both GETs")
    parser.add_argument(
        "--built-per-request",
        action="store_true",
        help="also GET /users/{id} with session.get (a statement built per request)",
    )
    parser.add_argument("--skip-heavy", action="store_true", help="GET /users/{id} only")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
