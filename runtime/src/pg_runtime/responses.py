"""The error answers each route documents in OpenAPI, so a generated client knows them.

pg_runtime/errors.py decides them; these say which a route can give. A 422 is FastAPI's own
validation error shape, also when the database, not the schema, refused a value.
"""

from typing import Any

from pg_runtime.error_body import ErrorBody

_DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8, say).",
    404: "No such row (or it was deleted while this request ran).",
    409: "Conflicts with existing data (the constraint is named), or with concurrent work.",
    413: "The request body is larger than MAX_BODY_SIZE.",
    500: "A bug: its traceback is in the server's log.",
    502: "The connection was lost during the commit: the write may or may not be stored. "
    "Read it back before trying again.",
    503: "The database is unavailable or busy; `Retry-After` says when to try again.",
    504: "The database took too long to answer.",
}

READS = (500, 503, 504)
WRITES = (409, *READS, 502)
BODY = (400, 413)  # routes that read a body


# FastAPI's body limit answers a Content-Length over the limit in plain text, before the
# app runs, and a chunked body that grows over it in JSON.
_ALSO_PLAIN_TEXT = {413: {"content": {"text/plain": {"schema": {"type": "string"}}}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer these statuses."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        | _ALSO_PLAIN_TEXT.get(status, {})
        for status in sorted(statuses)
    }
