"""The id of the request being served: the client's own if well-formed, else a new one."""

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
# A client's id is kept only if it cannot forge a log line or flood one: bounded, and of
# characters that need no escaping anywhere it is written.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,64}")

current: ContextVar[str | None] = ContextVar("request_id", default=None)


def from_header(value: bytes | None) -> str:
    """The client's id if it sent a well-formed one, else a new one."""
    if value is not None:
        given = value.decode("latin-1")
        if _WELL_FORMED.fullmatch(given):
            return given
    return uuid.uuid4().hex
