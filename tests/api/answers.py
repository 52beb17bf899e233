"""Checks on the app's answers that several API test modules make."""

from httpx import AsyncClient, Response

# What an answer must never show: SQL, the tables it names, the driver or ORM, a traceback.
LEAKS = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "user_account (",
    "note (",
    "asyncpg",
    "sqlalchemy",
    "Traceback",
)


def assert_no_sql(response: Response) -> None:
    for leak in LEAKS:
        assert leak not in response.text


async def assert_pages_by_id(client: AsyncClient, url: str, ids: list[int]) -> None:
    """The five rows with `ids` come in pages of two at `url`, in id order; past them, none."""
    assert len(ids) == 5
    pages = [{"limit": 2}, {"limit": 2, "offset": 2}, {"limit": 2, "offset": 4}, {"offset": 5}]
    answers = [await client.get(url, params=params) for params in pages]

    assert [answer.status_code for answer in answers] == [200] * 4
    assert [[row["id"] for row in answer.json()] for answer in answers] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
        [],
    ]
