"""A note written by a user: the example child table, one user to many notes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Identity, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orm.base import Base
from orm.models.user import User


class Note(Base):
    __tablename__ = "note"
    # A user's notes are listed in id order (GET /notes?user_id=): on (user_id, id) a page
    # costs its own rows, however many notes that user or any other has. The foreign key's
    # ON DELETE CASCADE finds a user's notes through it too.
    __table_args__ = (Index("ix_note_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # The database deletes a user's notes with the user: one DELETE, nothing loaded.
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    # lazy="raise": a forgotten selectinload fails loudly instead of becoming N+1 queries
    # (and under asyncio a lazy load could not run anyway).
    author: Mapped[User] = relationship(lazy="raise")
