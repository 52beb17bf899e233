"""HTTP endpoints for users."""

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from api.dependencies import SessionDep
from api.paging import Limit, Offset
from api.schemas.users import UserCreate, UserRead, UserUpdate, UserWithNotesRead
from orm.models import User

router = APIRouter(prefix="/users", tags=["users"])

# Handlers that write commit before they return: a unique or foreign-key violation found
# at commit time then still reaches api/errors.py and becomes a 409, and the client never
# sees a success for a write that was not stored.


@router.post("", status_code=201)
async def create_user(body: UserCreate, session: SessionDep) -> UserRead:
    user = User(**body.model_dump())
    session.add(user)
    await session.commit()
    return UserRead.model_validate(user)


@router.get("")
async def list_users(
    session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> list[UserWithNotesRead]:
    # selectinload: one more query for the notes of the whole page, whatever its size.
    users = await session.scalars(
        select(User).options(selectinload(User.notes)).order_by(User.id).limit(limit).offset(offset)
    )
    return [UserWithNotesRead.model_validate(user) for user in users]


@router.get("/{user_id}")
async def read_user(user_id: int, session: SessionDep) -> UserWithNotesRead:
    user = await session.get(User, user_id, options=[selectinload(User.notes)])
    if user is None:
        raise HTTPException(404, "user not found")
    return UserWithNotesRead.model_validate(user)


@router.patch("/{user_id}")
async def update_user(user_id: int, body: UserUpdate, session: SessionDep) -> UserRead:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, "user not found")
    for field, value in body.changes().items():
        setattr(user, field, value)
    await session.commit()
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=204)
async def delete_user(user_id: int, session: SessionDep) -> Response:
    # The database deletes the user's notes (ON DELETE CASCADE): one statement, no loading.
    deleted = await session.scalar(delete(User).where(User.id == user_id).returning(User.id))
    if deleted is None:
        raise HTTPException(404, "user not found")
    await session.commit()
    return Response(status_code=204)
