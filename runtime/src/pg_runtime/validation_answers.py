"""The 422 of a request its schemas refused: FastAPI's shape, bounded, never the input.

FastAPI's own handler answers every error with the input that failed (`input`, `ctx`):
the whole body, again, for each unknown key (100,000 of them: 11.7 MB), and a 500 when
that input cannot be encoded as JSON (`NaN`, a lone surrogate). Here each error keeps its
`loc`, `msg` and `type` only, trimmed, and the answer at most `MAX_ERRORS` of them plus a
count of the rest: a few KB at most, whatever the body.
"""

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

# Enough for every field of an ordinary body to report its fault at once; more is a
# client not reading the schema, to whom the first few say enough.
MAX_ERRORS = 10
# A `loc` names keys and indexes, and a key can be the client's: an unknown key of 500 KB.
MAX_LOC_PARTS = 8
MAX_LOC_TEXT = 40
MAX_MSG = 200
_MORE = "…"


async def validation_answer(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for RequestValidationError."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    shown: list[dict[str, Any]] = [_bounded(error) for error in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append(
            {
                "loc": [],
                "msg": f"{len(errors) - MAX_ERRORS} more errors not shown",
                "type": "too_many_errors",
            }
        )
    return JSONResponse({"detail": shown}, status_code=422)


def _bounded(error: Any) -> dict[str, Any]:
    loc = [_part(part) for part in error.get("loc", ())[:MAX_LOC_PARTS]]
    if len(error.get("loc", ())) > MAX_LOC_PARTS:
        loc.append(_MORE)
    return {
        "loc": loc,
        "msg": _text(str(error.get("msg", "")), MAX_MSG),
        "type": _text(str(error.get("type", "")), MAX_LOC_TEXT),
    }


def _part(part: Any) -> int | str:
    return part if type(part) is int else _text(str(part), MAX_LOC_TEXT)


def _text(text: str, limit: int) -> str:
    if len(text) > limit:
        text = text[:limit] + _MORE
    # A lone surrogate (in a key of a body that did not pass through pg_runtime.json_bodies,
    # say) cannot be encoded: replaced, so the answer always can.
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode()
    return text
