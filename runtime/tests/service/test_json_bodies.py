"""Hostile JSON bodies on any service built on the runtime (pg_runtime/json_bodies.py): not
JSON, or too many values, refused 422 where the app reads the body, before FastAPI parses it.

The probe's own routes, and a route of a service's own that the probe lacks: a float and a
free-form field, which FastAPI's parser would fill with NaN, infinity or a lone surrogate.
"""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from httpx import ASGITransport, AsyncClient
from pg_runtime.json_bodies import refusal_of
from pg_runtime.service import create_service_app
from probe.migrations import migrations
from probe.models import Probe
from probe.routes import router as probe_router
from probe.session import sessionmanager
from probe.settings import ProbeSettings
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

JSON = {"content-type": "application/json"}
MAX_VALUES = 50


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float
    note: Any = None


measures = APIRouter(prefix="/measures")


@measures.post("")
async def echo_measure(measure: Measure) -> Measure:
    return measure


@pytest.fixture(scope="module")
def service(app_settings: ProbeSettings) -> FastAPI:
    """The probe's routes and the measures', with MAX_BODY_VALUES=50."""
    settings = app_settings.model_copy(update={"max_body_values": MAX_VALUES})
    return create_service_app(
        "probe and measures", settings, sessionmanager, migrations, [probe_router, measures]
    )


@pytest.fixture
def measures_client(service: FastAPI) -> AsyncClient:
    # The measures need no session: the app's lifespan does not run.
    return AsyncClient(transport=ASGITransport(service), base_url="http://test")


@pytest.mark.parametrize(
    "body",
    [
        b'{"value": NaN}',
        b'{"value": Infinity}',
        b'{"value": -Infinity}',
        b'{"value": 1e400}',
        b'{"value": 1, "note": [1, {"deep": NaN}]}',
        rb'{"value": 1, "note": "\ud800"}',
        rb'{"value": 1, "note": {"\udfff": 1}}',
    ],
)
async def test_a_float_or_free_form_field_gets_no_constant_nor_lone_surrogate(
    measures_client: AsyncClient, body: bytes
) -> None:
    response = await measures_client.post("/measures", content=body, headers=JSON)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
async def test_every_json_media_type_is_held_to_strict_json(
    measures_client: AsyncClient, content_type: str
) -> None:
    response = await measures_client.post(
        "/measures", content=b'{"value": NaN}', headers={"content-type": content_type}
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_an_emoji_as_a_surrogate_pair_and_large_finite_numbers_pass(
    measures_client: AsyncClient,
) -> None:
    body = rb'{"value": 1.7976931348623157e308, "note": ["\ud83d\ude00", -1e-400]}'

    response = await measures_client.post("/measures", content=body, headers=JSON)

    assert response.status_code == 200, response.text
    assert response.json() == {"value": 1.7976931348623157e308, "note": ["\U0001f600", -0.0]}


async def test_a_body_of_more_values_than_max_body_values_is_refused(
    measures_client: AsyncClient,
) -> None:
    # The object, its two members and the list's items.
    at_limit = b'{"value": 1, "note": [%s]}' % b",".join([b"0"] * (MAX_VALUES - 3))
    over = b'{"value": 1, "note": [%s]}' % b",".join([b"0"] * (MAX_VALUES - 2))

    accepted = await measures_client.post("/measures", content=at_limit, headers=JSON)
    refused = await measures_client.post("/measures", content=over, headers=JSON)

    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == [
        {
            "loc": ["body"],
            "msg": f"the body holds more than {MAX_VALUES} JSON values",
            "type": "too_many_values",
        }
    ]


async def test_a_route_that_reads_no_body_answers_as_it_would_have(
    measures_client: AsyncClient, service: FastAPI
) -> None:
    response = await measures_client.request(
        "GET", service.url_path_for("read_liveness"), content=b"NaN", headers=JSON
    )

    assert response.status_code == 200, response.text


async def test_a_probe_route_with_an_id_refuses_a_lone_surrogate_and_keeps_the_row(
    client: AsyncClient, session: AsyncSession, probe: Probe, url_for: Callable[..., str]
) -> None:
    response = await client.patch(
        url_for("update_probe", probe_id=probe.id), content=rb'{"name": "\ud800"}', headers=JSON
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"
    await session.refresh(probe)
    assert probe.name == "Ann"


async def test_a_probe_create_with_nan_stores_nothing(
    client: AsyncClient, session: AsyncSession, url_for: Callable[..., str]
) -> None:
    before = await session.scalar(select(func.count()).select_from(Probe))

    response = await client.post(url_for("create_probe"), content=b'{"name": NaN}', headers=JSON)

    assert response.status_code == 422, response.text
    assert await session.scalar(select(func.count()).select_from(Probe)) == before


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[" * 150 + b"]" * 150, None),  # deep, but not absurd
        (b"[" * 300 + b"]" * 300, "json_invalid"),
        (b"\xff", "json_invalid"),  # not UTF-8
        (b'{"a": 1} x', "json_invalid"),
        (b'{"a": 1, "a": 2}', None),  # duplicate keys: the last wins, as in json.loads
        (b"[" + b",".join([b"0"] * 999) + b"]", None),  # the list and its items: 1,000
        (b"[" + b",".join([b"0"] * 1000) + b"]", "too_many_values"),
        # The object, its 4 members, b and b's 2 items: 8; then e's items.
        (b'{"a": {"b": [1, 2]}, "c": 3, "d": 4, "e": [%s]}' % b",".join([b"0"] * 992), None),
        (
            b'{"a": {"b": [1, 2]}, "c": 3, "d": 4, "e": [%s]}' % b",".join([b"0"] * 993),
            "too_many_values",
        ),
        # Longer than the head counted first (32 bytes per value allowed):
        (b"[" + b",".join([b"0"] * 20_000) + b", x", "too_many_values"),  # the head has them
        (b'["' + "é".encode() * 20_000 + b'", NaN]', "json_invalid"),  # cut in a character
        (b'["' + b"x" * 40_000 + b'", 1e400]', "json_invalid"),
        (b'["' + "é".encode() * 20_000 + b'", 1]', None),
    ],
)
def test_refusal_of_counts_and_parses_strictly(body: bytes, kind: str | None) -> None:
    refusal = refusal_of(body, max_values=1000)

    assert (refusal and refusal["type"]) == kind
