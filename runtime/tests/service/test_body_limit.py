"""MAX_BODY_SIZE on a real uvicorn: a larger body gets 413 before the app reads it whole.

FastAPI's `max_body_size` (Starlette's RequestBodyLimitMiddleware) answers in two ways:
- a Content-Length over the limit is refused before any of the body is received, and the
  answer is replaced by Starlette's plain-text "Content Too Large";
- a chunked body (no Content-Length) is counted as it arrives and refused at the first
  chunk that passes the limit, through FastAPI's handler: JSON `{"detail": ...}`.
"""

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import httpx
import pytest
from pg_harness.served import Served
from pg_harness.server import RunDatabases
from pg_harness.urls import asyncpg_connect_args
from pg_runtime.testing import role_env
from probe.settings import ProbeSettings
from served_probe import peak_memory_kib, served_probe
from sqlalchemy.engine import URL

# One worker starts the two servers, however the run is split (--dist=loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("body_limit")]

LIMIT = 1000
DEFAULT_LIMIT: int = ProbeSettings.model_fields["max_body_size"].default
TWENTY_MB = 20 * 1024 * 1024


def env_for(url: URL, max_body_size: int) -> dict[str, str]:
    # Given even at the default: a MAX_BODY_SIZE in the environment or .env must not count.
    return {
        **role_env(url),
        "MAX_BODY_SIZE": str(max_body_size),
    }


@pytest.fixture(scope="module")
async def database(run_databases: RunDatabases, worker_name: str) -> AsyncIterator[URL]:
    """A database of this module's own: the servers below commit to it."""
    async with run_databases.database(f"{worker_name}_body_limit") as url:
        yield url


@pytest.fixture(scope="module")
def served(database: URL) -> Iterator[Served]:
    """`python -m probe` with MAX_BODY_SIZE=1000, shared by the module's tests."""
    with served_probe(env_for(database, LIMIT)) as served:
        yield served


@pytest.fixture(scope="module")
def served_at_default(database: URL) -> Iterator[Served]:
    with served_probe(env_for(database, DEFAULT_LIMIT)) as served:
        yield served


def probe_body(name: str, size: int) -> bytes:
    """A valid ProbeCreate body of exactly `size` bytes (JSON padded with spaces): only its
    size can refuse it."""
    body = json.dumps({"name": name}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


async def in_chunks(body: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    # An iterator: httpx sends it with Transfer-Encoding: chunked and no Content-Length.
    for start in range(0, len(body), chunk_size):
        yield body[start : start + chunk_size]


async def post(
    served: Served, path: str, body: bytes, chunked: bool, chunk_size: int = 256
) -> httpx.Response:
    content = in_chunks(body, chunk_size) if chunked else body
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        response = await client.post(
            path, content=content, headers={"content-type": "application/json"}
        )
    if chunked:
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
    else:
        assert response.request.headers["content-length"] == str(len(body))
    return response


async def is_stored(database: URL, name: str) -> bool:
    connection = await asyncpg.connect(**asyncpg_connect_args(database))
    try:
        return bool(await connection.fetchval("SELECT count(*) FROM probe WHERE name = $1", name))
    finally:
        await connection.close()


def assert_refused_with_plain_text_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Content Too Large"


def assert_refused_with_json_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Content Too Large"}


async def test_body_over_the_limit_with_content_length_is_refused_with_413(
    served: Served, database: URL, url_for: Callable[..., str]
) -> None:
    name = "sized-over@example.org"

    response = await post(served, url_for("create_probe"), probe_body(name, LIMIT + 1), False)

    assert_refused_with_plain_text_413(response)
    assert not await is_stored(database, name)


async def test_chunked_body_over_the_limit_is_refused_with_413(
    served: Served, database: URL, url_for: Callable[..., str]
) -> None:
    name = "chunked-over@example.org"

    response = await post(served, url_for("create_probe"), probe_body(name, LIMIT + 1), True)

    assert_refused_with_json_413(response)
    assert not await is_stored(database, name)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_of_exactly_the_limit_is_stored(
    served: Served, database: URL, url_for: Callable[..., str], chunked: bool
) -> None:
    name = f"at-limit-{'chunked' if chunked else 'sized'}@example.org"

    response = await post(served, url_for("create_probe"), probe_body(name, LIMIT), chunked)

    assert response.status_code == 201, response.text
    assert response.json()["name"] == name
    assert await is_stored(database, name)


@pytest.mark.parametrize(
    ("chunked", "assert_refused"),
    [(False, assert_refused_with_plain_text_413), (True, assert_refused_with_json_413)],
    ids=["content-length", "chunked"],
)
async def test_20_mb_body_at_the_default_limit_is_refused_quickly_without_being_buffered(
    served_at_default: Served,
    database: URL,
    url_for: Callable[..., str],
    chunked: bool,
    assert_refused: Callable[[httpx.Response], None],
) -> None:
    name = f"twenty-mb-{'chunked' if chunked else 'sized'}@example.org"
    body = probe_body(name, TWENTY_MB)
    assert served_at_default.process is not None
    pid = served_at_default.process.pid
    peak_before = peak_memory_kib(pid)
    started = time.monotonic()

    response = await post(served_at_default, url_for("create_probe"), body, chunked, 65_536)

    elapsed = time.monotonic() - started
    assert_refused(response)
    assert elapsed < 5, f"{elapsed:.1f} s to refuse 20 MB"
    # Buffered whole, the body alone would add 20 MB; here at most the 1 MiB limit and a
    # chunk are held (uvicorn reads the rest of the upload off the socket and drops it).
    grown = peak_memory_kib(pid) - peak_before
    assert grown < 10 * 1024, f"the server's peak memory grew by {grown} KiB"
    assert not await is_stored(database, name)


async def test_body_refused_for_its_content_length_logs_no_error(
    served: Served, url_for: Callable[..., str]
) -> None:
    name = "logged@example.org"

    response = await post(served, url_for("create_probe"), probe_body(name, LIMIT + 1), False)

    assert response.status_code == 413
    # The ERROR, if any, is logged as the refused request's task unwinds: wait for the
    # access-log line of a request sent after it, found by its request id.
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        await client.get(url_for("read_liveness"), headers={"X-Request-ID": "after-refusal"})
    log = served.wait_for_log("[request after-refusal]", seconds=10)
    assert "ERROR" not in log, log
