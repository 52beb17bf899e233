"""Request and response bodies for users."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.schemas.notes import NoteRead
from api.schemas.patch import PatchModel
from orm.models import Role

# Enough to catch typos; whether the address exists is for a confirmation mail to find out.
# Lower-cased so that the unique constraint treats Ann@x.org and ann@x.org as one user.
Email = Annotated[
    str,
    Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(str.lower),
]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name
    role: Role = Role.member


class UserUpdate(PatchModel):
    email: Email | None = None
    name: Name | None = None
    role: Role | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Role
    created_at: datetime


class UserWithNotesRead(UserRead):
    notes: list[NoteRead]
