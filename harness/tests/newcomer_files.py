"""What the README's "Add a model" walkthrough has a newcomer write, file by file.

harness/tests/test_newcomer.py writes these into a copy of the project, in the README's
order. Keep both in step with the README: this is its executable form.
"""

MODEL = '''\
"""A label on a note: a many-to-one relationship to an existing model."""

from sqlalchemy import ForeignKey, Identity, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orm.base import Base
from orm.models.note import Note


class Tag(Base):
    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("note_id", "label"),)

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("note.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(50))

    note: Mapped[Note] = relationship(lazy="raise")
'''

# The column the second mistake adds to the model, with no revision for it.
UNMIGRATED_COLUMN = "    colour: Mapped[str | None] = mapped_column(String(20))\n"

SCHEMAS = '''\
"""Request and response bodies for tags."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Label = Annotated[str, Field(min_length=1, max_length=50)]


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note_id: int
    label: Label


class TagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    note_id: int
    label: str
'''

ROUTER = '''\
"""HTTP endpoints for tags."""

from fastapi import APIRouter, HTTPException

from api.dependencies import ReadSession, WriteSession
from api.schemas.tags import TagCreate, TagRead
from orm.models import Tag

router = APIRouter(prefix="/tags", tags=["tags"])


@router.post("", status_code=201)
async def create_tag(body: TagCreate, session: WriteSession) -> TagRead:
    tag = Tag(**body.model_dump())
    session.add(tag)
    await session.commit()
    return TagRead.model_validate(tag)


@router.get("/{tag_id}")
async def read_tag(tag_id: int, session: ReadSession) -> TagRead:
    tag = await session.get(Tag, tag_id)
    if tag is None:
        raise HTTPException(404, "tag not found")
    return TagRead.model_validate(tag)
'''

TESTS = '''\
"""The /tags endpoints: each answer, and what it left in the tag table."""

from collections.abc import Callable

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orm.models import Note, Tag, User

UrlFor = Callable[..., str]
MISSING_ID = 999_999_999


async def count_tags(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Tag)) or 0


@pytest.fixture
async def note_id(session: AsyncSession) -> int:
    user = User(email="ann@example.org", name="Ann")
    session.add(user)
    await session.commit()
    note = Note(user_id=user.id, title="Groceries")
    session.add(note)
    await session.commit()
    return note.id


async def test_create_tag_returns_201_and_stores_the_row(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note_id: int
) -> None:
    response = await client.post(url_for("create_tag"), json={"note_id": note_id, "label": "home"})

    assert response.status_code == 201
    stored = (await session.execute(select(Tag.id, Tag.note_id, Tag.label))).one()
    assert tuple(stored) == (response.json()["id"], note_id, "home")


async def test_a_duplicate_label_returns_409_and_keeps_one_row(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note_id: int
) -> None:
    body = {"note_id": note_id, "label": "home"}
    assert (await client.post(url_for("create_tag"), json=body)).status_code == 201

    response = await client.post(url_for("create_tag"), json=body)

    assert response.status_code == 409
    assert await count_tags(session) == 1


async def test_a_tag_for_a_missing_note_returns_409_and_stores_nothing(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    response = await client.post(
        url_for("create_tag"), json={"note_id": MISSING_ID, "label": "home"}
    )

    assert response.status_code == 409
    assert await count_tags(session) == 0


async def test_an_empty_label_returns_422_and_stores_nothing(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note_id: int
) -> None:
    response = await client.post(url_for("create_tag"), json={"note_id": note_id, "label": ""})

    assert response.status_code == 422
    assert await count_tags(session) == 0


async def test_read_tag_returns_200_or_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note_id: int
) -> None:
    tag = Tag(note_id=note_id, label="home")
    session.add(tag)
    await session.commit()

    found = await client.get(url_for("read_tag", tag_id=tag.id))
    missing = await client.get(url_for("read_tag", tag_id=MISSING_ID))

    assert (found.status_code, found.json()["label"]) == (200, "home")
    assert missing.status_code == 404


# Several tests on one worker's database: each must find the table as the template left it.
@pytest.mark.parametrize("attempt", range(4))
async def test_each_test_starts_with_no_tags(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, note_id: int, attempt: int
) -> None:
    assert await count_tags(session) == 0
    response = await client.post(
        url_for("create_tag"), json={"note_id": note_id, "label": f"try {attempt}"}
    )
    assert response.status_code == 201
'''

# An index on an existing table's column, for autogenerate to write as a plain CREATE INDEX.
NOTE_TITLE = "    title: Mapped[str] = mapped_column(String(200))\n"
NOTE_TITLE_INDEXED = "    title: Mapped[str] = mapped_column(String(200), index=True)\n"
