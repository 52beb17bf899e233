"""Every answer carries X-Request-ID: the client's own if well-formed, else a new one."""

import re

import pytest
from httpx import AsyncClient
from pg_runtime.observability.request_id import HEADER


async def test_an_answer_carries_a_new_id_when_the_client_sent_none(client: AsyncClient) -> None:
    first = (await client.get("/health/live")).headers[HEADER]
    second = (await client.get("/health/live")).headers[HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


async def test_a_well_formed_id_of_the_clients_comes_back(client: AsyncClient) -> None:
    sent = "checkout-7f3a:retry.2_b"
    response = await client.get("/probes/999999999", headers={HEADER: sent})
    assert response.status_code == 404  # error answers carry it too
    assert response.headers[HEADER] == sent


@pytest.mark.parametrize(
    "sent",
    ["a" * 65, "two words", "<script>", "id;rm -rf", "\u00e9t\u00e9".encode()],
    ids=["too-long", "space", "markup", "semicolon", "non-ascii"],
)
async def test_an_id_a_log_line_could_not_hold_safely_is_replaced(
    client: AsyncClient, sent: str
) -> None:
    answered = (await client.get("/health/live", headers={HEADER: sent})).headers[HEADER]
    assert answered != sent
    assert re.fullmatch(r"[0-9a-f]{32}", answered)
