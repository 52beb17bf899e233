"""Request and response bodies for users."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from api.schemas.fields import Email, text
from api.schemas.patch import Omitted, PatchModel
from orm.models import Role

Name = Annotated[str, text(min_length=1, max_length=100)]


# No `role`: a client must not make itself an admin. An admin-only route would take a
# schema of its own with it.
class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "ann@example.org", "name": "Ann"}]},
    )

    email: Email
    name: Name


class UserUpdate(PatchModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Ann Smith"}]})

    email: Email | Omitted = None
    name: Name | Omitted = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Role
    created_at: datetime
