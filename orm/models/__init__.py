"""Every model, imported here so that `Base.metadata` (and so Alembic) sees all tables."""

from orm.models.note import Note
from orm.models.user import Role, User

__all__ = ["Note", "Role", "User"]
