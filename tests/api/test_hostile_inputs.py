"""Everyday hostile requests: each is the client's mistake, answered 4xx, storing nothing
(test_users.py has the roles, the twins of a taken email and the nulls of a PATCH).

Before the schemas knew PostgreSQL's limits, most of these reached the database and came
back as 503 "database unavailable".
"""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.paging import MAX_OFFSET
from api.schemas.fields import INT4_MAX
from orm.models import User
from tests.api.answers import assert_no_sql

INT4_PAST = INT4_MAX + 1
INT8_PAST = 2**63
NUL = "A\x00B"
# 306 characters, within the 320 the schema allows; folding makes each İ two: 606.
GROWS_WHEN_FOLDED = "\u0130" * 300 + "@x.org"

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
