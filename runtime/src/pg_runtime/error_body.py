"""The body of every error answer that is not pydantic's own 422."""

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str
    # The constraint the database named, when it refused a write (a 409).
    constraint: str | None = None
