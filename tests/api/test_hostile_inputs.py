"""Everyday hostile requests: each is the client's mistake, answered 4xx, storing nothing
(test_users.py has the roles, the twins of a taken email and the nulls of a PATCH).

Before the schemas knew PostgreSQL's limits, most of these reached the database and came
back as 503 "database unavailable".
"""

import logging
from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.paging import MAX_OFFSET
from api.schemas.fields import INT4_MAX
from app.settings import Settings
from orm.models import User
from tests.api.answers import assert_no_sql

INT4_PAST = INT4_MAX + 1
INT8_PAST = 2**63
NUL = "A\x00B"
# 306 characters, within the 320 the schema allows; folding makes each İ two: 606.
GROWS_WHEN_FOLDED = "\u0130" * 300 + "@x.org"
JSON = {"Content-Type": "application/json"}

CASES = [
    ("GET", "/users/{past_int4}", None, 422),
    ("GET", "/users/{past_int8}", None, 422),
    ("GET", "/users/0", None, 422),
    ("GET", "/users/-1", None, 422),
    ("PATCH", "/users/{past_int4}", {"name": "Ann"}, 422),
    ("DELETE", "/users/{past_int4}", None, 422),
    ("GET", "/users?offset=36893488147419103233", None, 422),
    ("GET", f"/users?offset={MAX_OFFSET + 1}", None, 422),
    ("GET", "/users?limit=0", None, 422),
    ("POST", "/users", {"email": "nul@example.org", "name": NUL}, 422),
    ("POST", "/users", {"email": "a\x00b@example.org", "name": "Ann"}, 422),
    ("PATCH", "/users/{user}", {"name": NUL}, 422),
    ("POST", "/users", {"email": GROWS_WHEN_FOLDED, "name": "Ann"}, 422),
    ("PATCH", "/users/{user}", {"email": None, "name": None}, 422),
    ("POST", "/users", "not json", 422),
    ("POST", "/users", {"email": "big@example.org", "name": "x" * 20_000_000}, 413),
]


async def count_users(session: AsyncSession) -> int | None:
    return await session.scalar(select(func.count()).select_from(User))


def with_ids(body: Any, user_id: int) -> Any:
    """`body`, its "{user}" placeholders replaced by the existing user's id."""
    if not isinstance(body, dict):
        return body
    return {key: user_id if value == "{user}" else value for key, value in body.items()}


@pytest.mark.parametrize(("method", "path", "body", "status"), CASES)
async def test_a_hostile_request_is_refused_and_stores_nothing(
    client: AsyncClient,
    session: AsyncSession,
    user: User,
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    ids = {"user": user.id, "past_int4": INT4_PAST, "past_int8": INT8_PAST}
    before = await count_users(session)
    sent = {"content": body} if isinstance(body, str) else {"json": with_ids(body, user.id)}

    response = await client.request(
        method, path.format(**ids), headers={"Content-Type": "application/json"}, **sent
    )

    assert response.status_code == status, response.text
    assert await count_users(session) == before
    assert_no_sql(response)
    stored = await session.scalar(select(User.name).where(User.id == user.id))
    assert stored == "Ann"


# Sent as written. NaN, Infinity, numbers past a double and lone surrogates are not JSON
# (RFC 8259), yet Python's parser takes them: FastAPI's 422 then echoed them and failed to
# encode its own answer (a 500, and a 5 KB traceback logged per request).
NOT_JSON = {
    "NaN in a field": b'{"email": "nan@example.org", "name": NaN}',
    "Infinity in a field": b'{"email": "inf@example.org", "name": Infinity}',
    "-Infinity in a field": b'{"email": "inf@example.org", "name": -Infinity}',
    "1e400 in a field": b'{"email": "big@example.org", "name": 1e400}',
    "NaN in an unknown key": b'{"email": "nan@example.org", "name": "Ann", "x": NaN}',
    "Infinity in a list": b'{"email": "inf@example.org", "name": "Ann", "x": [1, Infinity]}',
    "-1e400 nested": b'{"email": "big@example.org", "name": "Ann", "x": {"y": [{"z": -1e400}]}}',
    "lone surrogate in a value": rb'{"email": "lone@example.org", "name": "\ud800"}',
    "lone surrogate in a key": rb'{"email": "lone@example.org", "name": "Ann", "\udc00": 1}',
    "100,000 nested [": b"[" * 100_000 + b"]" * 100_000,
}
AT_MOST_VALUES: int = Settings.model_fields["max_body_values"].default
# Hexadecimal keys: 100,000 of them fit in 0.93 MB, under MAX_BODY_SIZE (1 MiB).
MANY_UNKNOWN_KEYS = b"{" + b",".join(b'"%x":0' % i for i in range(100_000)) + b"}"
# As many as a body may hold (the object itself is one value): each makes an error.
UNKNOWN_KEYS_AT_THE_LIMIT = (
    b"{" + b",".join(b'"%x":0' % i for i in range(AT_MOST_VALUES - 1)) + b"}"
)
HUGE_UNKNOWN_KEY = b'{"email": "key@example.org", "name": "Ann", "%s": 1}' % (b"k" * 500_000)
TOO_MANY_ERRORS = {
    "100,000 unknown keys": MANY_UNKNOWN_KEYS,
    "MAX_BODY_VALUES - 1 unknown keys": UNKNOWN_KEYS_AT_THE_LIMIT,
    "an unknown key of 500,000 characters": HUGE_UNKNOWN_KEY,
}
# A few errors of a few hundred bytes each at most (pg_runtime/validation_answers.py).
SMALL = 4096


@pytest.mark.parametrize(
    "body", [*NOT_JSON.values(), *TOO_MANY_ERRORS.values()], ids=[*NOT_JSON, *TOO_MANY_ERRORS]
)
async def test_a_hostile_body_is_refused_small_storing_nothing_and_logging_no_traceback(
    client: AsyncClient,
    session: AsyncSession,
    url_for: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    before = await count_users(session)

    with caplog.at_level(logging.INFO):
        response = await client.post(url_for("create_user"), content=body, headers=JSON)

    assert response.status_code == 422, response.text
    assert len(response.content) <= SMALL
    errors = response.json()["detail"]
    assert all(set(error) == {"loc", "msg", "type"} for error in errors)
    assert await count_users(session) == before
    assert "Traceback" not in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("body", NOT_JSON.values(), ids=NOT_JSON)
async def test_a_body_that_is_not_json_is_refused_as_invalid_json(
    client: AsyncClient, url_for: Callable[..., str], body: bytes
) -> None:
    response = await client.post(url_for("create_user"), content=body, headers=JSON)

    assert response.status_code == 422, response.text
    assert [error["type"] for error in response.json()["detail"]] == ["json_invalid"]


async def test_a_body_with_many_errors_shows_the_first_ten_and_counts_the_rest(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    response = await client.post(
        url_for("create_user"), content=UNKNOWN_KEYS_AT_THE_LIMIT, headers=JSON
    )

    assert response.status_code == 422, response.text
    *shown, rest = response.json()["detail"]
    assert [error["loc"] for error in shown[:3]] == [
        ["body", "email"],
        ["body", "name"],
        ["body", "0"],
    ]
    assert len(shown) == 10
    # The two missing fields, and one error per unknown key.
    assert rest == {
        "loc": [],
        "msg": f"{AT_MOST_VALUES - 1 + 2 - 10} more errors not shown",
        "type": "too_many_errors",
    }


async def test_a_body_of_more_than_max_body_values_is_refused_before_validation(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    response = await client.post(url_for("create_user"), content=MANY_UNKNOWN_KEYS, headers=JSON)

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {
            "loc": ["body"],
            "msg": f"the body holds more than {AT_MOST_VALUES} JSON values",
            "type": "too_many_values",
        }
    ]


async def test_an_unknown_key_is_named_shortened(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    response = await client.post(url_for("create_user"), content=HUGE_UNKNOWN_KEY, headers=JSON)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "k" * 40 + "…"]


async def test_an_emoji_sent_as_a_surrogate_pair_is_stored_as_one_character(
    client: AsyncClient, session: AsyncSession, url_for: Callable[..., str]
) -> None:
    body = rb'{"email": "emoji@example.org", "name": "\ud83d\ude00"}'

    response = await client.post(url_for("create_user"), content=body, headers=JSON)

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "\U0001f600"
    stored = await session.scalar(select(User.name).where(User.email == "emoji@example.org"))
    assert stored == "\U0001f600"
