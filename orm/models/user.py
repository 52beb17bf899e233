"""A user of the service: the example parent table."""

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, Identity, String, func
from sqlalchemy.orm import Mapped, mapped_column

from orm.base import Base


class Role(enum.StrEnum):
    member = "member"
    admin = "admin"


class User(Base):
    # "user" is a reserved word in PostgreSQL: raw SQL would have to quote it everywhere.
    __tablename__ = "user_account"
    # The app stores emails NFKC-normalised and case-folded (api/schemas/fields.py); raw SQL
    # must too. Only the normalisation can be checked here: lower() follows the locale.
    __table_args__ = (CheckConstraint("email IS NFKC NORMALIZED", name="email_normalized"),)

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", values_callable=lambda roles: [r.value for r in roles]),
        server_default=Role.member.value,
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
