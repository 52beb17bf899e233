"""The probe's tables: `probe` (a unique name, for 409s) and its `probe_item` children."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, ForeignKey, Identity, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# As a service names its constraints: pg_runtime.errors reports which one failed.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class Probe(Base):
    __tablename__ = "probe"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # Unique, and optional: a test that needs only a row posts no body.
    name: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    # lazy="raise": reading it without a selectinload is the bug the error tests make.
    items: Mapped[list[ProbeItem]] = relationship(
        back_populates="probe", lazy="raise", passive_deletes=True
    )


class ProbeItem(Base):
    __tablename__ = "probe_item"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    probe_id: Mapped[int] = mapped_column(ForeignKey("probe.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100), server_default="")

    probe: Mapped[Probe] = relationship(back_populates="items", lazy="raise")
