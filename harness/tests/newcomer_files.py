"""What the README's "Add a model" walkthrough has a newcomer write, file by file.

harness/tests/test_newcomer.py writes these into a copy of the project, in the README's
order. Keep both in step with the README: this is its executable form.
"""

MODEL = '''\
"""A project, owned by a user: a many-to-one relationship to an existing model."""

from datetime import datetime

from sqlalchemy import ForeignKey, Identity, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orm.base import Base
from orm.models.user import User


class Project(Base):
    __tablename__ = "project"
    # One name per owner: the database refuses a second, and the API answers 409.
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    owner: Mapped[User] = relationship(lazy="raise")
'''

# The column the second mistake adds to the model, with no revision for it.
UNMIGRATED_COLUMN = "    colour: Mapped[str | None] = mapped_column(String(20))\n"

SCHEMAS = '''\
"""Request and response bodies for projects."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from api.schemas.fields import RowId, text

Name = Annotated[str, text(min_length=1, max_length=100)]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_id: RowId
    name: Name


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    name: str
    created_at: datetime
'''

ROUTER = '''\
"""HTTP endpoints for projects."""

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pg_runtime.responses import BODY, READS, WRITES, errors

from api.dependencies import ReadSession, WriteSession
from api.schemas.fields import path_id
from api.schemas.projects import ProjectCreate, ProjectRead
from orm.models import Project

router = APIRouter(prefix="/projects", tags=["projects"])

ProjectId = Annotated[int, path_id("the project's id")]


@router.post("", status_code=201, responses=errors(*WRITES, *BODY))
async def create_project(body: ProjectCreate, session: WriteSession) -> ProjectRead:
    project = Project(**body.model_dump())
    session.add(project)
    await session.commit()
    return ProjectRead.model_validate(project)


@router.get("/{project_id}", responses=errors(404, *READS))
async def read_project(project_id: ProjectId, session: ReadSession) -> ProjectRead:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(404, "project not found")
    return ProjectRead.model_validate(project)
'''

TESTS = '''\
"""The /projects endpoints: each answer, and what it left in the project table."""

from collections.abc import Callable

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orm.models import Project, User

UrlFor = Callable[..., str]
MISSING_ID = 999_999_999


async def count_projects(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Project)) or 0


@pytest.fixture
async def owner_id(session: AsyncSession) -> int:
    user = User(email="ann@example.org", name="Ann")
    session.add(user)
    await session.commit()
    return user.id


async def test_create_project_returns_201_and_stores_the_row(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, owner_id: int
) -> None:
    body = {"owner_id": owner_id, "name": "Garden"}
    response = await client.post(url_for("create_project"), json=body)

    assert response.status_code == 201
    stored = (await session.execute(select(Project.id, Project.owner_id, Project.name))).one()
    assert tuple(stored) == (response.json()["id"], owner_id, "Garden")


async def test_a_taken_name_returns_409_and_keeps_one_row(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, owner_id: int
) -> None:
    body = {"owner_id": owner_id, "name": "Garden"}
    assert (await client.post(url_for("create_project"), json=body)).status_code == 201

    response = await client.post(url_for("create_project"), json=body)

    assert response.status_code == 409
    assert await count_projects(session) == 1


async def test_a_project_of_a_missing_user_returns_409_and_stores_nothing(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor
) -> None:
    body = {"owner_id": MISSING_ID, "name": "Garden"}
    response = await client.post(url_for("create_project"), json=body)

    assert response.status_code == 409
    assert await count_projects(session) == 0


async def test_an_empty_name_returns_422_and_stores_nothing(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, owner_id: int
) -> None:
    body = {"owner_id": owner_id, "name": ""}
    response = await client.post(url_for("create_project"), json=body)

    assert response.status_code == 422
    assert await count_projects(session) == 0


async def test_read_project_returns_200_or_404(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, owner_id: int
) -> None:
    project = Project(owner_id=owner_id, name="Garden")
    session.add(project)
    await session.commit()

    found = await client.get(url_for("read_project", project_id=project.id))
    missing = await client.get(url_for("read_project", project_id=MISSING_ID))

    assert (found.status_code, found.json()["name"]) == (200, "Garden")
    assert missing.status_code == 404


# Several tests on one worker's database: each must find the table as the template left it.
@pytest.mark.parametrize("attempt", range(4))
async def test_each_test_starts_with_no_projects(
    client: AsyncClient, session: AsyncSession, url_for: UrlFor, owner_id: int, attempt: int
) -> None:
    assert await count_projects(session) == 0
    body = {"owner_id": owner_id, "name": f"try {attempt}"}
    response = await client.post(url_for("create_project"), json=body)
    assert response.status_code == 201
'''

# An index on an existing table's column, for autogenerate to write as a plain CREATE INDEX.
USER_NAME = "    name: Mapped[str] = mapped_column(String(100))\n"
USER_NAME_INDEXED = "    name: Mapped[str] = mapped_column(String(100), index=True)\n"
