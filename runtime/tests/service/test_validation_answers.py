"""The 422 of a body the schemas refused (pg_runtime/validation_answers.py): FastAPI's shape,
never the input, at most MAX_ERRORS errors and a count of the rest, a few KB at most."""

import json
from collections.abc import Callable

from httpx import AsyncClient
from pg_runtime.validation_answers import MAX_ERRORS

JSON = {"content-type": "application/json"}
SECRET = "hunter2-secret"


async def test_a_refused_body_is_not_echoed(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    body = {"name": "", "password": SECRET, "nested": {"token": SECRET}}

    response = await client.post(url_for("create_probe"), json=body)

    assert response.status_code == 422, response.text
    assert SECRET not in response.text
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "name"],
                "msg": "String should have at least 1 character",
                "type": "string_too_short",
            },
            {
                "loc": ["body", "password"],
                "msg": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            },
            {
                "loc": ["body", "nested"],
                "msg": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            },
        ]
    }


async def test_many_errors_are_answered_with_the_first_few_and_a_count(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    body = {f"unknown_{index}": index for index in range(500)}

    response = await client.post(url_for("create_probe"), json=body)

    assert response.status_code == 422, response.text
    *shown, rest = response.json()["detail"]
    assert len(shown) == MAX_ERRORS
    assert shown[0]["loc"] == ["body", "unknown_0"]
    assert rest == {"loc": [], "msg": "490 more errors not shown", "type": "too_many_errors"}
    assert len(response.content) < 2048


async def test_a_long_unknown_key_is_named_shortened_and_the_answer_stays_small(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    body = {"k" * 100_000 + str(index): index for index in range(5)}

    response = await client.post(url_for("create_probe"), json=body)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "k" * 40 + "…"]
    assert len(response.content) < 4096


async def test_path_and_query_errors_keep_fastapis_shape(
    client: AsyncClient, url_for: Callable[..., str]
) -> None:
    response = await client.get(url_for("read_probe", probe_id=0), params={"pause": "x" * 5000})

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [
        ["path", "probe_id"],
        ["query", "pause"],
    ]
    assert "x" * 41 not in json.dumps(response.json())
