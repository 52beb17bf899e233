"""A note written by a user: the example child table, one user to many notes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Identity, String, Text, and_, func, select
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from orm.base import Base
from orm.models.user import User


class Note(Base):
    __tablename__ = "note"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # The database deletes a user's notes with the user; see User.notes(passive_deletes).
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    author: Mapped[User] = relationship(back_populates="notes", lazy="raise")


# What a user's JSON embeds: its first notes only, so that one user with thousands of notes
# cannot make a page of users unbounded; GET /notes?user_id= pages through the rest.
# SQLAlchemy's row-limited relationship recipe: the server numbers each user's notes, and
# a filter on note.user_id (a constant, or = ANY of an array) reaches inside the numbering,
# so only those users' notes are read. A filter on the joined user_account does not:
# selectinload(User.first_notes) would number the whole table (api/routers/users.py loads
# a page's first notes with FirstNote instead).
MAX_EMBEDDED_NOTES = 20
_numbered = select(
    Note, func.row_number().over(partition_by=Note.user_id, order_by=Note.id).label("position")
).subquery()
FirstNote = aliased(Note, _numbered)
FIRST_NOTES_ONLY = _numbered.c.position <= MAX_EMBEDDED_NOTES
User.first_notes = relationship(
    FirstNote,
    primaryjoin=and_(User.id == FirstNote.user_id, FIRST_NOTES_ONLY),
    viewonly=True,
    lazy="raise",
    order_by=FirstNote.id,
)
