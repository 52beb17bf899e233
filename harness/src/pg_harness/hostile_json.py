"""Hostile JSON sent raw to every operation that takes a JSON body: what schemathesis never
sends, since it generates valid JSON and serializes it itself.

A Hypothesis strategy draws bodies with one mutation each: `NaN`, `Infinity`, `-Infinity`
or a number past a double in a field, an unknown key's value or a list, nested; a lone
surrogate in a value or a key; a field given twice (the second value hostile); nesting
past any sane depth; thousands of unknown keys. Each must be answered without a 5xx, and a
refusal (4xx) in a few KB.
"""

import json
import re
from typing import Any

import hypothesis
from hypothesis import strategies as st
from schemathesis.python.asgi import ASGIClient

# Examples per operation; the seed is pg_harness.fuzz's.
MAX_EXAMPLES = 40
# A refusal's answer: a few errors of a few hundred bytes each.
MAX_REFUSAL_BYTES = 4096
_CONSTANTS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E999"]
_HOSTILE_KINDS = [
    "field",
    "unknown key",
    "in a list",
    "nested",
    "key",
    "duplicate key",
    "deep",
    "many keys",
]

# Each value is JSON text already: a strategy of text, so that what json.dumps cannot write
# (NaN as a literal, a lone surrogate escaped, a million brackets) can be.
ordinary = st.one_of(
    st.just("null"),
    st.booleans().map(json.dumps),
    st.integers(-(2**31), 2**31).map(str),
    st.text(max_size=12).map(json.dumps),
)
lone_surrogate = st.integers(0xD800, 0xDFFF).map(lambda code: f'"\\u{code:04x}"')
# A lone surrogate inside ordinary text, not only alone.
surrogate_in_text = st.tuples(st.text(max_size=6), lone_surrogate).map(
    lambda parts: json.dumps(parts[0])[:-1] + parts[1][1:]
)
hostile_value = st.one_of(st.sampled_from(_CONSTANTS), lone_surrogate, surrogate_in_text)


def _object(members: list[tuple[str, str]]) -> str:
    """An object of members given as JSON text, duplicates kept: `{"a": 1, "a": NaN}`."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in members) + "}"


@st.composite
def hostile_body(draw: st.DrawFn, fields: list[str]) -> bytes:
    """A body for an operation whose JSON body has `fields`: valid-looking, but for one
    hostile mutation."""
    members = [(json.dumps(field), draw(ordinary)) for field in fields]
    kind = draw(st.sampled_from(_HOSTILE_KINDS))
    bad = draw(hostile_value)
    if kind == "field" and members:
        index = draw(st.integers(0, len(members) - 1))
        members[index] = (members[index][0], bad)
    elif kind in {"field", "unknown key"}:
        members.append((json.dumps(draw(st.text(max_size=8))), bad))
    elif kind == "in a list":
        members.append(('"items"', f"[{draw(ordinary)}, {bad}]"))
    elif kind == "nested":
        members.append(('"outer"', f'{{"inner": [{{"leaf": {bad}}}]}}'))
    elif kind == "key":
        members.append((draw(st.one_of(lone_surrogate, surrogate_in_text)), draw(ordinary)))
    elif kind == "duplicate key":
        field = draw(st.sampled_from(fields)) if fields else "x"
        members.append((json.dumps(field), bad))
    elif kind == "deep":
        depth = draw(st.sampled_from([201, 1_000, 100_000]))
        return ("[" * depth + "]" * depth).encode()
    else:  # many keys
        count = draw(st.sampled_from([1_001, 20_000]))
        members += [(f'"k{index:x}"', "0") for index in range(count)]
    return _object(members).encode()


def json_operations(document: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(method, path with its parameters filled, the body's top-level fields) of every
    operation whose body is JSON."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = _resolved(document, content["application/json"].get("schema", {}))
            fields = sorted(_properties(document, schema))
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path), fields))
    return found


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def _properties(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The fields of an object schema, or of each object in an anyOf (a body or null)."""
    names = set(schema.get("properties", {}))
    for option in schema.get("anyOf", []):
        names |= _properties(document, _resolved(document, option))
    return names


def send_hostile_bodies(app: Any, seed: int) -> None:
    """Sends drawn hostile bodies to every JSON operation of `app` (its lifespan started);
    fails on a 5xx, or a refusal larger than MAX_REFUSAL_BYTES."""
    # The document built in-process, as /openapi.json would serve it: a production app
    # serves none.
    operations = json_operations(json.loads(json.dumps(app.openapi())))
    assert operations, "no operation takes a JSON body: nothing to send hostile JSON to"
    with ASGIClient(app) as client:
        for method, path, fields in operations:
            _send_to(client, method, path, fields, seed)


def _send_to(client: ASGIClient, method: str, path: str, fields: list[str], seed: int) -> None:
    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        database=None,
        deadline=None,
        # Large bodies on purpose, and slow ones to draw (100,000 brackets).
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(body=hostile_body(fields))
    def answered_without_a_5xx(body: bytes) -> None:
        answer = client.request(
            method, path, data=body, headers={"content-type": "application/json"}
        )
        sent = f"{method} {path} with {body[:120]!r} ({len(body)} bytes)"
        assert answer.status_code < 500, f"{sent}: {answer.status_code} {answer.text[:500]}"
        if answer.status_code >= 400:
            assert len(answer.content) <= MAX_REFUSAL_BYTES, (
                f"{sent}: a refusal of {len(answer.content)} bytes"
            )

    answered_without_a_5xx()
