"""The /users endpoints: each answer, and what it left in the user_account table."""

from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.factory import create_app
from orm.models import Role, User
from tests.api.answers import assert_no_sql, assert_pages_by_id
from tests.factories import UserFactory
from tests.in_process import app_client, settings_for

UrlFor = Callable[..., str]

# No row has this id: identity values in a test database stay far below it.
MISSING_ID = 999_999_999
ALREADY_EXISTS = {"detail": "already exists", "constraint": "uq_user_account_email"}


async def count_users(session: AsyncSession, email: str) -> int:
    return await session.scalar(select(func.count()).where(User.email == email)) or 0


# Fixtures commit, which here only releases a savepoint: a row that was only flushed would
# share the savepoint the app rolls back on a 404, 409 or 422, and vanish with it. That
# rollback also expires every loaded object, so tests that expect an error read ids first.
async def test_create_user_returns_201_and_stores_the_row(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.post(
        url_for("create_user"), json={"email": "ann@example.org", "name": "Ann"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ann@example.org"
    assert body["name"] == "Ann"
    assert body["role"] == "member"
    stored = (await session.execute(select(User.email, User.name, User.role))).one()
    assert (stored.email, stored.name, stored.role) == ("ann@example.org", "Ann", Role.member)
    assert await session.scalar(select(User.id)) == body["id"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Ann@Example.ORG", "ann@example.org"),
        ("\uff21nn@example.org", "ann@example.org"),  # full-width A: NFKC makes it an A
        ("Stra\u00dfe@example.org", "strasse@example.org"),  # case folding, not lower()
    ],
)
async def test_create_user_stores_the_email_normalised(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, sent: str, stored: str
) -> None:
    response = await client.post(url_for("create_user"), json={"email": sent, "name": "Ann"})

    assert response.status_code == 201
    assert response.json()["email"] == stored
    assert await session.scalar(select(User.email)) == stored


async def test_a_client_cannot_choose_its_role(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.post(
        url_for("create_user"), json={"email": "ann@example.org", "name": "Ann", "role": "admin"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "role"]
    assert await session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    "email", ["ann@example.org", "ANN@example.org", "\uff41nn@example.org", "Ann@Example.Org"]
)
async def test_create_user_with_taken_email_returns_409(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, email: str
) -> None:
    response = await client.post(url_for("create_user"), json={"email": email, "name": "Other"})

    assert response.status_code == 409
    assert response.json() == ALREADY_EXISTS
    assert_no_sql(response)
    assert await count_users(session, "ann@example.org") == 1
    assert await session.scalar(select(User.name)) == "Ann"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": "Ann"}, id="email missing"),
        pytest.param({"email": "not-an-email", "name": "Ann"}, id="email malformed"),
        pytest.param({"email": "ann@example.org", "name": ""}, id="name empty"),
        pytest.param({"email": "ann@example.org", "name": "x" * 101}, id="name too long"),
        pytest.param({"email": "ann@example.org", "name": "Ann", "role": "boss"}, id="role"),
        pytest.param({"email": "ann@example.org", "name": "Ann", "id": 7}, id="unknown field"),
    ],
)
async def test_create_user_with_invalid_body_returns_422(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, body: dict[str, Any]
) -> None:
    response = await client.post(url_for("create_user"), json=body)

    assert response.status_code == 422
    assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_read_user_returns_200(client: AsyncClient, url_for: UrlFor, user: User) -> None:
    response = await client.get(url_for("read_user", user_id=user.id))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["email"], body["name"]) == (user.id, "ann@example.org", "Ann")


async def test_read_missing_user_returns_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.get(url_for("read_user", user_id=MISSING_ID))

    assert response.status_code == 404
    assert response.json() == {"detail": "user not found"}
    assert await session.get(User, MISSING_ID) is None


async def test_list_users_pages_by_id_with_limit_and_offset(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    session.add_all(UserFactory.batch(5))
    await session.commit()
    stored_ids = list(await session.scalars(select(User.id).order_by(User.id)))

    await assert_pages_by_id(client, url_for("list_users"), stored_ids)


async def test_list_users_returns_at_most_100_per_page(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    session.add_all(UserFactory.batch(101))
    await session.commit()

    response = await client.get(url_for("list_users"), params={"limit": 100})

    assert response.status_code == 200
    assert len(response.json()) == 100
    assert await session.scalar(select(func.count()).select_from(User)) == 101


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")],
)
async def test_list_users_with_paging_out_of_range_returns_422(
    client: AsyncClient, url_for: UrlFor, params: dict[str, int], field: str
) -> None:
    response = await client.get(url_for("list_users"), params=params)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


async def test_update_user_changes_only_the_fields_sent(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    response = await client.patch(
        url_for("update_user", user_id=user.id), json={"email": "Ann.New@Example.org"}
    )

    assert response.status_code == 200
    assert response.json()["email"] == "ann.new@example.org"
    assert response.json()["name"] == "Ann"
    stored = (
        await session.execute(select(User.email, User.name, User.role).where(User.id == user.id))
    ).one()
    assert (stored.email, stored.name, stored.role) == ("ann.new@example.org", "Ann", Role.member)


async def test_update_user_with_empty_body_changes_nothing(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    response = await client.patch(url_for("update_user", user_id=user.id), json={})

    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.org"
    stored = (await session.execute(select(User.email, User.name).where(User.id == user.id))).one()
    assert (stored.email, stored.name) == ("ann@example.org", "Ann")


async def test_update_missing_user_returns_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.patch(url_for("update_user", user_id=MISSING_ID), json={"name": "X"})

    assert response.status_code == 404
    assert response.json() == {"detail": "user not found"}
    assert await session.get(User, MISSING_ID) is None


@pytest.mark.parametrize("email", ["bob@example.org", "Bob@Example.org"])
async def test_update_user_email_to_taken_one_returns_409(
    client: AsyncClient,
    session: AsyncSession,
    url_for: UrlFor,
    user: User,
    other_user: User,
    email: str,
) -> None:
    user_id = user.id

    response = await client.patch(url_for("update_user", user_id=user_id), json={"email": email})

    assert response.status_code == 409
    assert response.json() == ALREADY_EXISTS
    assert_no_sql(response)
    assert await count_users(session, "bob@example.org") == 1
    assert await session.scalar(select(User.email).where(User.id == user_id)) == "ann@example.org"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": None}, id="explicit null"),
        pytest.param({"email": None, "name": "Ann B"}, id="null beside a value"),
        pytest.param({"nickname": "annie"}, id="unknown field"),
        pytest.param({"id": 7}, id="id"),
        pytest.param({"email": "not-an-email"}, id="email malformed"),
        pytest.param({"role": "boss"}, id="role"),
    ],
)
async def test_update_user_with_invalid_body_returns_422(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, body: dict[str, Any]
) -> None:
    user_id = user.id

    response = await client.patch(url_for("update_user", user_id=user_id), json=body)

    assert response.status_code == 422
    stored = (await session.execute(select(User.email, User.name).where(User.id == user_id))).one()
    assert (stored.email, stored.name) == ("ann@example.org", "Ann")


async def test_delete_user_returns_204_and_deletes_only_that_user(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, other_user: User
) -> None:
    user_id, other_user_id = user.id, other_user.id

    response = await client.delete(url_for("delete_user", user_id=user_id))

    assert response.status_code == 204
    assert response.content == b""
    assert list(await session.scalars(select(User.id))) == [other_user_id]


async def test_delete_missing_user_returns_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    response = await client.delete(url_for("delete_user", user_id=MISSING_ID))

    assert response.status_code == 404
    assert response.json() == {"detail": "user not found"}
    assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_create_user_with_taken_email_is_refused_at_commit_and_stored_once(
    fresh_database: URL,
) -> None:
    # The app's own sessions on a database of its own: the violation is raised by a real
    # COMMIT, not by a savepoint release in the test's transaction.
    app = create_app(settings_for(fresh_database))
    body = {"email": "ann@example.org", "name": "Ann"}
    async with app_client(app) as client:
        created = await client.post(app.url_path_for("create_user"), json=body)
        duplicate = await client.post(app.url_path_for("create_user"), json=body)

    assert created.status_code == 201
    assert duplicate.status_code == 409
    assert duplicate.json() == ALREADY_EXISTS
    assert_no_sql(duplicate)
    engine = create_async_engine(fresh_database)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(
                select(func.count()).where(User.email == "ann@example.org")
            )
    finally:
        await engine.dispose()
    assert stored == 1
