"""A base for PATCH bodies: any field may be left out, none may be set to null."""

from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.json_schema import SkipJsonSchema

# A field's type for "left out": None is its default, never a value a client may send, so
# the OpenAPI document does not offer null.
Omitted = SkipJsonSchema[None]


class PatchModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _reject_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"may not be null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, object]:
        """The fields the client sent, to apply to the row."""
        return self.model_dump(exclude_unset=True)
