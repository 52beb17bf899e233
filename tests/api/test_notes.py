"""The /notes endpoints: each answer, and what it left in the note table."""

from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient
from polyfactory import Ignore, Use
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.fields import INT4_MAX
from orm.models import Note, User
from tests.api.answers import assert_no_sql, assert_pages_by_id
from tests.factories import UserFactory

UrlFor = Callable[..., str]


class NoteFactory(SQLAlchemyFactory[Note]):
    # Whose note it is, a test says: user_id=...
    __set_primary_key__ = False
    __set_foreign_keys__ = False
    __set_relationships__ = False

    title = Use(SQLAlchemyFactory.__faker__.sentence)
    body = Use(SQLAlchemyFactory.__faker__.paragraph)
    created_at = Ignore()
    updated_at = Ignore()


# No row has this id: identity values in a test database stay far below it.
MISSING_ID = 999_999_999


async def count_notes(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Note)) or 0


# Fixtures commit, which here only releases a savepoint: a row that was only flushed would
# share the savepoint the app rolls back on a 404, 409 or 422, and vanish with it. That
# rollback also expires every loaded object, so tests that expect an error read ids first.
@pytest.fixture
async def note(session: AsyncSession, user: User) -> Note:
    note = NoteFactory.build(user_id=user.id, title="Groceries", body="milk, eggs")
    session.add(note)
    await session.commit()
    return note


async def test_create_note_returns_201_and_stores_the_row(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    response = await client.post(
        url_for("create_note"), json={"user_id": user.id, "title": "Groceries", "body": "milk"}
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["user_id"], body["title"], body["body"]) == (user.id, "Groceries", "milk")
    stored = (await session.execute(select(Note.id, Note.user_id, Note.title, Note.body))).one()
    assert tuple(stored) == (body["id"], user.id, "Groceries", "milk")


async def test_create_note_without_body_stores_an_empty_body(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    response = await client.post(url_for("create_note"), json={"user_id": user.id, "title": "T"})

    assert response.status_code == 201
    assert response.json()["body"] == ""
    assert await session.scalar(select(Note.body)) == ""


async def test_create_note_for_missing_user_returns_409(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.post(
        url_for("create_note"), json={"user_id": MISSING_ID, "title": "Orphan"}
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": "refers to a row that does not exist, or is still referred to",
        "constraint": "fk_note_user_id_user_account",
    }
    assert_no_sql(response)
    assert await count_notes(session) == 0


@pytest.mark.parametrize("missing", ["user_id", "title"])
async def test_create_note_without_required_field_returns_422(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, missing: str
) -> None:
    body = {"user_id": user.id, "title": "T"}
    del body[missing]

    response = await client.post(url_for("create_note"), json=body)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", missing]]
    assert await count_notes(session) == 0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"user_id": "ann"}, id="user_id not a number"),
        pytest.param({"title": ""}, id="title empty"),
        pytest.param({"title": "x" * 201}, id="title too long"),
        pytest.param({"body": "x" * 10_001}, id="body too long"),
        pytest.param({"body": None}, id="body null"),
        pytest.param({"tags": ["a"]}, id="unknown field"),
    ],
)
async def test_create_note_with_invalid_field_returns_422(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, change: dict[str, Any]
) -> None:
    body = {"user_id": user.id, "title": "T"} | change

    response = await client.post(url_for("create_note"), json=body)

    assert response.status_code == 422
    assert await count_notes(session) == 0


async def test_read_note_returns_200(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note: Note
) -> None:
    response = await client.get(url_for("read_note", note_id=note.id))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["user_id"]) == (note.id, note.user_id)
    assert (body["title"], body["body"]) == ("Groceries", "milk, eggs")
    stored = (await session.execute(select(Note.title, Note.body).where(Note.id == note.id))).one()
    assert tuple(stored) == ("Groceries", "milk, eggs")


async def test_read_missing_note_returns_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.get(url_for("read_note", note_id=MISSING_ID))

    assert response.status_code == 404
    assert response.json() == {"detail": "note not found"}
    assert await session.get(Note, MISSING_ID) is None


async def test_list_notes_pages_by_id_with_limit_and_offset(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    session.add_all(NoteFactory.batch(5, user_id=user.id))
    await session.commit()
    stored_ids = list(await session.scalars(select(Note.id).order_by(Note.id)))

    await assert_pages_by_id(client, url_for("list_notes"), stored_ids)


async def test_list_notes_of_one_user_leaves_out_other_users_notes(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    bob = UserFactory.build()
    session.add(bob)
    await session.flush()
    session.add_all(
        [
            NoteFactory.build(user_id=user.id, title="Ann's 1"),
            NoteFactory.build(user_id=bob.id, title="Bob's"),
            NoteFactory.build(user_id=user.id, title="Ann's 2"),
        ]
    )
    await session.commit()

    response = await client.get(url_for("list_notes"), params={"user_id": user.id})

    assert response.status_code == 200
    assert [note["title"] for note in response.json()] == ["Ann's 1", "Ann's 2"]
    stored_ids = await session.scalars(
        select(Note.id).where(Note.user_id == user.id).order_by(Note.id)
    )
    assert [note["id"] for note in response.json()] == list(stored_ids)


async def test_list_notes_returns_at_most_100_per_page(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User
) -> None:
    session.add_all(NoteFactory.batch(101, user_id=user.id))
    await session.commit()

    response = await client.get(url_for("list_notes"), params={"limit": 100})

    assert response.status_code == 200
    assert len(response.json()) == 100
    assert await count_notes(session) == 101


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"user_id": "ann"}, "user_id"),
    ],
)
async def test_list_notes_with_invalid_query_returns_422(
    client: AsyncClient, url_for: UrlFor, params: dict[str, Any], field: str
) -> None:
    response = await client.get(url_for("list_notes"), params=params)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


async def test_update_note_changes_only_the_fields_sent(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note: Note
) -> None:
    response = await client.patch(url_for("update_note", note_id=note.id), json={"title": "Shop"})

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["body"]) == ("Shop", "milk, eggs")
    stored = (await session.execute(select(Note.title, Note.body).where(Note.id == note.id))).one()
    assert tuple(stored) == ("Shop", "milk, eggs")


async def test_update_note_body_to_empty_string_stores_it(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note: Note
) -> None:
    response = await client.patch(url_for("update_note", note_id=note.id), json={"body": ""})

    assert response.status_code == 200
    assert response.json()["body"] == ""
    assert await session.scalar(select(Note.body).where(Note.id == note.id)) == ""


async def test_update_missing_note_returns_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.patch(url_for("update_note", note_id=MISSING_ID), json={"title": "X"})

    assert response.status_code == 404
    assert response.json() == {"detail": "note not found"}
    assert await session.get(Note, MISSING_ID) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": None}, id="explicit null"),
        pytest.param({"title": "Shop", "body": None}, id="null beside a value"),
        pytest.param({"title": ""}, id="title empty"),
        pytest.param({"pinned": True}, id="unknown field"),
        pytest.param({"user_id": 1}, id="user_id cannot move a note"),
    ],
)
async def test_update_note_with_invalid_body_returns_422(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note: Note, body: dict[str, Any]
) -> None:
    note_id = note.id

    response = await client.patch(url_for("update_note", note_id=note_id), json=body)

    assert response.status_code == 422
    stored = (await session.execute(select(Note.title, Note.body).where(Note.id == note_id))).one()
    assert tuple(stored) == ("Groceries", "milk, eggs")


async def test_delete_note_returns_204_and_deletes_only_that_note(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, note: Note
) -> None:
    note_id, user_id = note.id, user.id
    session.add(NoteFactory.build(user_id=user_id, title="Keep"))
    await session.commit()

    response = await client.delete(url_for("delete_note", note_id=note_id))

    assert response.status_code == 204
    assert response.content == b""
    assert list(await session.scalars(select(Note.title))) == ["Keep"]
    assert await session.scalar(select(User.id).where(User.id == user_id)) == user_id


async def test_delete_missing_note_returns_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note: Note
) -> None:
    response = await client.delete(url_for("delete_note", note_id=MISSING_ID))

    assert response.status_code == 404
    assert response.json() == {"detail": "note not found"}
    assert await count_notes(session) == 1


async def test_deleting_a_user_deletes_their_notes(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, user: User, other_user: User
) -> None:
    user_id, other_user_id = user.id, other_user.id
    session.add_all([NoteFactory.build(user_id=user_id), NoteFactory.build(user_id=other_user_id)])
    await session.commit()

    response = await client.delete(url_for("delete_user", user_id=user_id))

    assert response.status_code == 204
    assert list(await session.scalars(select(Note.user_id))) == [other_user_id]


# Everyday hostile requests (tests/api/test_hostile_inputs.py has the users' own): each a
# 4xx that stores nothing.
NUL = "A\x00B"

HOSTILE = [
    ("GET", "/notes/{past_int8}", None, 422),
    ("DELETE", "/notes/{past_int4}", None, 422),
    ("GET", "/notes?user_id={past_int4}", None, 422),
    ("POST", "/notes", {"user_id": INT4_MAX + 1, "title": "t"}, 422),
    ("POST", "/notes", {"user_id": "{user}", "title": NUL}, 422),
    ("POST", "/notes", {"user_id": "{user}", "title": "t", "body": NUL}, 422),
    ("PATCH", "/notes/{note}", {"title": None}, 422),
    ("POST", "/notes", {"user_id": INT4_MAX, "title": "orphan"}, 409),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), HOSTILE)
async def test_a_hostile_request_about_notes_is_refused_and_stores_nothing(
    client: AsyncClient,
    session: AsyncSession,
    note: Note,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    ids = {"note": note.id, "past_int4": INT4_MAX + 1, "past_int8": 2**63}
    if body is not None:
        body = {key: note.user_id if value == "{user}" else value for key, value in body.items()}

    response = await client.request(method, path.format(**ids), json=body)

    assert response.status_code == status, response.text
    assert await count_notes(session) == 1
    assert_no_sql(response)
