"""What a handler's session allows, on the app's own engines and lifespan (real commits):
`ReadSession` reads as SQLAlchemy reads (streams, `yield_per`, several statements),
`SnapshotSession` sees one snapshot, and `WriteSession` writes whatever the HTTP method."""

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text

from api.dependencies import ReadSession, SnapshotSession, WriteSession
from app.factory import create_app
from app.settings import Settings
from orm.models import User
from tests.in_process import app_client

EMAILS = [f"stream.{n}@example.org" for n in range(5)]
# Two statements of one session, a moment apart: the same now() means one transaction.
NOW_TWICE = "SELECT now()", "SELECT pg_sleep(0.01), now()"


@pytest.fixture
async def client(app_settings: Settings) -> AsyncIterator[AsyncClient]:
    # One read connection: each test's later reads reuse the one a stream ran on.
    app = create_app(app_settings.model_copy(update={"db_read_pool_size": 1}))

    @app.get("/test/stream")
    async def stream_emails(session: ReadSession) -> list[str]:
        query = select(User.email).where(User.email.in_(EMAILS)).order_by(User.email)
        return [email async for email in await session.stream_scalars(query)]

    @app.get("/test/yield-per")
    async def yield_per_emails(session: ReadSession) -> list[str]:
        query = select(User).where(User.email.in_(EMAILS)).order_by(User.id)
        result = await session.stream_scalars(query.execution_options(yield_per=2))
        return [user.email async for user in result]

    @app.get("/test/one-transaction")
    async def one_transaction(session: ReadSession) -> bool:
        first = await session.scalar(text(NOW_TWICE[0]))
        second = (await session.execute(text(NOW_TWICE[1]))).one()[1]
        return bool(first == second)

    @app.get("/test/snapshot")
    async def snapshot(session: SnapshotSession) -> dict[str, object]:
        isolation = await session.scalar(text("SHOW transaction_isolation"))
        read_only = await session.scalar(text("SHOW transaction_read_only"))
        first = await session.scalar(text(NOW_TWICE[0]))
        second = (await session.execute(text(NOW_TWICE[1]))).one()[1]
        return {"isolation": isolation, "read_only": read_only, "one": first == second}

    # A GET that must write says so: get-or-create.
    @app.get("/test/get-or-create")
    async def get_or_create(session: WriteSession) -> int:
        user = await session.scalar(select(User).where(User.email == EMAILS[0]))
        if user is None:
            user = User(email=EMAILS[0], name="Ann")
            session.add(user)
            await session.commit()
        return user.id

    async with app_client(app) as client:
        yield client


@pytest.fixture
async def users(client: AsyncClient) -> AsyncIterator[list[int]]:
    ids = []
    for email in EMAILS:
        created = await client.post("/users", json={"email": email, "name": "Ann"})
        assert created.status_code == 201
        ids.append(created.json()["id"])
    yield ids
    for user_id in ids:
        await client.delete(f"/users/{user_id}")


async def test_a_read_session_streams_and_its_connection_returns_to_autocommit(
    client: AsyncClient, users: list[int]
) -> None:
    streamed = await client.get("/test/stream")
    after = await client.get("/test/one-transaction")

    assert streamed.status_code == 200
    assert streamed.json() == sorted(EMAILS)
    assert after.json() is False  # the next read on that connection: a statement each


async def test_a_read_session_reads_with_yield_per(client: AsyncClient, users: list[int]) -> None:
    response = await client.get("/test/yield-per")

    assert response.status_code == 200
    assert response.json() == EMAILS


async def test_a_snapshot_session_reads_one_read_only_snapshot(client: AsyncClient) -> None:
    response = await client.get("/test/snapshot")

    assert response.status_code == 200
    assert response.json() == {"isolation": "repeatable read", "read_only": "on", "one": True}


async def test_a_get_with_a_write_session_writes(
    client: AsyncClient, app_settings: Settings
) -> None:
    created = await client.get("/test/get-or-create")
    again = await client.get("/test/get-or-create")
    try:
        assert created.status_code == 200
        assert again.json() == created.json()
        read = await client.get(f"/users/{created.json()}")
        assert read.json()["email"] == EMAILS[0]
    finally:
        await client.delete(f"/users/{created.json()}")
