"""GET requests read as the reader role (DATABASE_READER_URL): no write a GET handler
attempts is stored, whatever it SETs first, and nothing it SETs lets a later GET write.

On the app's own pools, with real commits (app_client), as production runs them.
"""

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from in_process import app_client
from probe.dependencies import ReadSession
from probe.factory import create_app
from probe.models import Probe
from probe.settings import ProbeSettings
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

NAME = "written by a GET"

# What a handler might run to lift the read pool's read-only default first.
UNLOCKS = {
    "nothing": None,
    "set-default-off": "SET default_transaction_read_only = off",
    "session-characteristics": "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "set-config": "SELECT set_config('default_transaction_read_only', 'off', false)",
}
WRITES = ["orm", "core", "raw-sql"]


async def write(session: AsyncSession, how: str) -> None:
    connection = await session.connection()
    if how == "orm":  # an ORM session of its own on the GET's connection: past ReadOnlySession
        async with AsyncSession(bind=connection) as own:
            own.add(Probe(name=NAME))
            await own.flush()
    elif how == "core":
        await connection.execute(insert(Probe).values(name=NAME))
    else:
        await connection.execute(text("INSERT INTO probe (name) VALUES (:name)"), {"name": NAME})
    await connection.commit()


@pytest.fixture
async def client(app_settings: ProbeSettings) -> AsyncIterator[AsyncClient]:
    # One read connection: what a request SETs on it, the next one finds.
    app = create_app(app_settings.model_copy(update={"db_read_pool_size": 1}))

    @app.get("/test/{unlock}/{how}")
    async def unlock_then_write(unlock: str, how: str, session: ReadSession) -> None:
        if (statement := UNLOCKS[unlock]) is not None:
            await session.execute(text(statement))
        if how != "none":
            await write(session, how)

    @app.get("/test/stored")
    async def stored(session: ReadSession) -> int:
        query = select(func.count()).select_from(Probe).where(Probe.name == NAME)
        return await session.scalar(query) or 0

    @app.get("/test/whoami")
    async def whoami(session: ReadSession) -> str:
        return str(await session.scalar(text("SELECT current_user")))

    async with app_client(app) as client:
        yield client


async def test_a_get_reads_as_the_reader_role(client: AsyncClient) -> None:
    response = await client.get("/test/whoami")

    assert response.status_code == 200
    assert response.json().endswith("_reader")


# With nothing SET first, the read pool's read-only default refuses too:
# test_read_only_requests.py.
@pytest.mark.parametrize("how", WRITES)
@pytest.mark.parametrize("unlock", [name for name in UNLOCKS if name != "nothing"])
async def test_a_get_that_writes_stores_nothing_whatever_it_sets_first(
    client: AsyncClient, unlock: str, how: str
) -> None:
    response = await client.get(f"/test/{unlock}/{how}")

    assert response.status_code == 500
    assert (await client.get("/test/stored")).json() == 0


@pytest.mark.parametrize("unlock", [name for name in UNLOCKS if name != "nothing"])
async def test_what_a_get_sets_lets_no_later_get_write(client: AsyncClient, unlock: str) -> None:
    assert (await client.get(f"/test/{unlock}/none")).status_code == 200

    response = await client.get("/test/nothing/core")

    assert response.status_code == 500
    assert (await client.get("/test/stored")).json() == 0
