"""HTTP endpoints for users."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import joinedload, selectinload

from api.dependencies import SessionDep
from api.paging import Limit, Offset
from api.responses import READS, WRITES, errors
from api.schemas.fields import path_id
from api.schemas.users import UserCreate, UserRead, UserUpdate, UserWithNotesRead
from orm.models import User

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, path_id("the user's id")]

# The read routes' statements, built once with bind parameters: SQLAlchemy looks up its
# compiled SQL by a key it computes for each statement object, and a statement built per
# request costs that again each time (15 % of a GET's CPU, bench/throughput.py).
# joinedload: the user and its notes in one query (one round trip); selectinload: one more
# query for the notes of the whole page, whatever its size (a join would repeat users).
USER_WITH_NOTES = (
    select(User).options(joinedload(User.first_notes)).where(User.id == bindparam("id"))
)
PAGE_WITH_NOTES = (
    select(User)
    .options(selectinload(User.first_notes))
    .order_by(User.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)

# Handlers that write commit before they return: a unique or foreign-key violation found
# at commit time then still reaches api/errors.py and becomes a 409, and the client never
# sees a success for a write that was not stored.


@router.post("", status_code=201, responses=errors(*WRITES))
async def create_user(body: UserCreate, session: SessionDep) -> UserRead:
    user = User(**body.model_dump())
    session.add(user)
    await session.commit()
    return UserRead.model_validate(user)


@router.get("", responses=errors(*READS))
async def list_users(
    session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> list[UserWithNotesRead]:
    users = await session.scalars(PAGE_WITH_NOTES, {"limit": limit, "offset": offset})
    return [UserWithNotesRead.model_validate(user) for user in users]


@router.get("/{user_id}", responses=errors(404, *READS))
async def read_user(user_id: UserId, session: SessionDep) -> UserWithNotesRead:
    # unique(): the join returns the user once per note.
    user = (await session.scalars(USER_WITH_NOTES, {"id": user_id})).unique().one_or_none()
    if user is None:
        raise HTTPException(404, "user not found")
    return UserWithNotesRead.model_validate(user)


@router.patch("/{user_id}", responses=errors(404, *WRITES))
async def update_user(user_id: UserId, body: UserUpdate, session: SessionDep) -> UserRead:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, "user not found")
    for field, value in body.changes().items():
        setattr(user, field, value)
    await session.commit()
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=204, responses=errors(404, *WRITES))
async def delete_user(user_id: UserId, session: SessionDep) -> Response:
    # The database deletes the user's notes (ON DELETE CASCADE): one statement, no loading.
    deleted = await session.scalar(delete(User).where(User.id == user_id).returning(User.id))
    if deleted is None:
        raise HTTPException(404, "user not found")
    await session.commit()
    return Response(status_code=204)
