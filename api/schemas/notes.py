"""Request and response bodies for notes."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from api.schemas.fields import RowId, text
from api.schemas.patch import Omitted, PatchModel

Title = Annotated[str, text(min_length=1, max_length=200)]
Body = Annotated[str, text(min_length=0, max_length=10_000)]


class NoteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": 1, "title": "Groceries", "body": "milk"}]},
    )

    user_id: RowId
    title: Title
    body: Body = ""


class NoteUpdate(PatchModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"title": "Groceries, Friday"}]})

    title: Title | Omitted = None
    body: Body | Omitted = None


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    title: str
    body: str
    created_at: datetime
