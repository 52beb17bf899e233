"""Refuses a JSON request body that is not strict JSON, or holds too many values, before
the app parses it: the client's mistake answered 422, cheaply.

FastAPI parses a body with `json.loads`, which takes `NaN`, `Infinity`, numbers beyond a
double (`1e400` becomes `inf`) and lone surrogates (`"\\ud800"`), none of them JSON
(RFC 8259). A float field would store them, a str field refuses them and its 422 then
cannot be encoded (a 500), and PostgreSQL's UTF-8 cannot hold a lone surrogate. Here the
body is parsed first with pydantic's own parser (jiter), which refuses the constants and
lone surrogates (`allow_inf_nan=False`), keeps valid surrogate pairs (an emoji), and
stops at a nesting depth of about 200.

Pydantic reports one error per bad value: 100,000 unknown keys make 100,000 errors, which
FastAPI turns into dicts at ~4 µs each, on the event loop, before any handler can trim
them. So a body holding more than `max_values` values (MAX_BODY_VALUES) is refused here,
before FastAPI parses it at all: what a 422 can cost is bounded by that, not by the body.
Its head is counted first: parsing costs most per small value, and a body of too many
small values shows them in its first bytes.

A middleware rather than a custom route class: it holds for every route of every router a
service includes, without each router opting in. It reads ahead only bodies sent as JSON,
and hands the app the very messages it received, a failure of the body limit included;
a refusal is raised where the app reads the body, as FastAPI's HTTPException (422,
`{"detail": [{"loc", "msg", "type"}]}`).
"""

import math
from typing import Any

from fastapi import HTTPException
from pydantic_core import from_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bytes of a body's head counted first, per value allowed: a head of small values (up to
# this long each) that holds too many refuses the body without parsing all of it.
_BYTES_PER_VALUE = 32
_TOO_MANY = "too_many_values"


class StrictJsonBodies:
    """Reads a JSON request body ahead, and hands it on, or its refusal, to the app."""

    def __init__(self, app: ASGIApp, max_values: int) -> None:
        self.app = app
        self.max_values = max_values

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        chunks: list[bytes] = []
        failure: Exception | None = None
        try:
            while True:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request":
                    break  # the client left: the app learns it from the replay
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    refusal = refusal_of(body, self.max_values) if body else None
                    if refusal is not None:
                        # Raised where the app reads the body, as MAX_BODY_SIZE's 413 is: the
                        # route's answer, in its log line and metrics; a route that reads no
                        # body answers as it would have.
                        received, failure = [], HTTPException(422, [refusal])
                    break
        except Exception as exc:
            failure = exc  # MAX_BODY_SIZE's signal, say: FastAPI answers it (413)
        await self.app(scope, _replay(received, failure, receive), send)


def _replay(received: list[Message], failure: Exception | None, receive: Receive) -> Receive:
    """`receive` as the app meets it: the messages read ahead, then the failure that ended
    the reading, if any, then the real thing (a later disconnect)."""
    pending = iter(received)

    async def replayed() -> Message:
        nonlocal failure
        message = next(pending, None)
        if message is not None:
            return message
        if failure is not None:
            failed, failure = failure, None
            raise failed
        return await receive()

    return replayed


def refusal_of(body: bytes, max_values: int) -> dict[str, Any] | None:
    """The validation error (FastAPI's 422 shape) that refuses `body`, or None if it is
    strict JSON of at most `max_values` values."""
    # 100,000 keys take 20 ms or more to parse; their first 32 KB, a fraction of one.
    head = body[: max_values * _BYTES_PER_VALUE]
    if len(head) < len(body):
        try:
            # Values cut off at the end are left out: what is counted is in the body too.
            partial = from_json(head, allow_inf_nan=False, cache_strings=False, allow_partial=True)
        except ValueError:
            pass  # the cut in a character, or a fault that the whole parse names below
        else:
            refusal = _walk(partial, max_values)
            if refusal is not None and refusal["type"] == _TOO_MANY:
                return refusal
    try:
        # Strings uncached: a hostile body's thousands of keys would only evict useful ones.
        value = from_json(body, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        # jiter's message names the fault and its line and column, never the input.
        return _error("json_invalid", f"JSON decode error: {exc}")
    return _walk(value, max_values)


def _walk(value: Any, max_values: int) -> dict[str, Any] | None:
    """Counts `value`'s values (each member of an object or array is one), refusing as soon
    as there are more than `max_values`, and any number that overflowed to infinity."""
    pending = [value]
    counted = 0
    while pending:
        item = pending.pop()
        counted += 1
        if type(item) is float:
            if not math.isfinite(item):
                return _error("json_invalid", "JSON decode error: a number beyond a double")
        elif type(item) is dict or type(item) is list:
            members = item.values() if type(item) is dict else item
            # Everything pending is counted in the end: refuse before walking any of it.
            if counted + len(pending) + len(members) > max_values:
                return _error(_TOO_MANY, f"the body holds more than {max_values} JSON values")
            pending.extend(members)
    return None


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"loc": ["body"], "msg": message, "type": kind}


def _is_json(scope: Scope) -> bool:
    # As FastAPI decides to parse a body as JSON: application/json or application/*+json.
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.partition(b";")[0].strip().lower()
            return media_type == b"application/json" or (
                media_type.startswith(b"application/") and media_type.endswith(b"+json")
            )
    return False
