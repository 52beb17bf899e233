"""Field types that know what PostgreSQL can store, so a client's mistake is a 422, not a 5xx."""

import unicodedata
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, Field

# An `Identity()` key is an int4: a larger id cannot name a row, and asyncpg refuses to
# send it.
INT4_MAX = 2**31 - 1
# PostgreSQL's text types cannot hold the NUL character (SQLSTATE 22021); pydantic already
# refuses strings that are not valid Unicode (lone surrogates).
NO_NUL = r"^[^\x00]*$"

RowId = Annotated[int, Field(ge=1, le=INT4_MAX)]
"""An id in a body (a foreign key)."""


def path_id(description: str) -> Any:
    return Path(ge=1, le=INT4_MAX, description=description)


def query_id(description: str) -> Any:
    return Query(ge=1, le=INT4_MAX, description=description)


def text(min_length: int, max_length: int) -> Any:
    return Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)


def normalize_email(value: object) -> object:
    """NFKC, then case folding: `Ann@x.org`, `ann@x.org` and `\uff41nn@x.org` (a full-width
    a) are one address.

    Folding can undo normalisation, hence NFKC again; the column's CHECK refuses what is
    not NFKC-normalised, so raw SQL that forgets this fails instead of making a twin.
    """
    if not isinstance(value, str):
        return value  # pydantic refuses it as not a string
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


# Enough to catch typos; whether the address exists is for a confirmation mail to find out.
# Checked after normalisation, which can lengthen it ("İ" folds to two characters).
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$",
        description="stored NFKC-normalised and case-folded; at most 320 characters then",
    ),
    # After the Field: it then runs first, and the constraints stay in the OpenAPI document.
    BeforeValidator(normalize_email),
]
