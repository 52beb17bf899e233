"""HTTP endpoints for users."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Response
from pg_runtime.responses import BODY, READS, WRITES, errors
from sqlalchemy import bindparam, delete, select

from api.dependencies import ReadSession, WriteSession
from api.paging import Limit, Offset
from api.schemas.fields import path_id
from api.schemas.users import UserCreate, UserRead, UserUpdate
from orm.models import User

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, path_id("the user's id")]

# The reads' statements, built once: building one per request (session.get builds and
# annotates a new one each call) costs the app more CPU than the round trip to the
# server (bench/request_cpu.py). SQLAlchemy compiles each once, whichever way.
USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
USERS_PAGE = select(User).order_by(User.id).limit(bindparam("limit")).offset(bindparam("offset"))

# Handlers that write commit before they return: a unique or foreign-key violation found
# at commit time then still reaches the runtime's error answers and becomes a 409, and the
# client never sees a success for a write that was not stored.


@router.post("", status_code=201, responses=errors(*WRITES, *BODY))
async def create_user(body: UserCreate, session: WriteSession) -> UserRead:
    user = User(**body.model_dump())
    session.add(user)
    await session.commit()
    return UserRead.model_validate(user)


@router.get("", responses=errors(*READS))
async def list_users(session: ReadSession, limit: Limit = 20, offset: Offset = 0) -> list[UserRead]:
    users = await session.scalars(USERS_PAGE, {"limit": limit, "offset": offset})
    return [UserRead.model_validate(user) for user in users]


@router.get("/{user_id}", responses=errors(404, *READS))
async def read_user(user_id: UserId, session: ReadSession) -> UserRead:
    user = await session.scalar(USER_BY_ID, {"user_id": user_id})
    if user is None:
        raise HTTPException(404, "user not found")
    return UserRead.model_validate(user)


@router.patch("/{user_id}", responses=errors(404, *WRITES, *BODY))
async def update_user(user_id: UserId, body: UserUpdate, session: WriteSession) -> UserRead:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, "user not found")
    for field, value in body.changes().items():
        setattr(user, field, value)
    await session.commit()
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=204, responses=errors(404, *WRITES))
async def delete_user(user_id: UserId, session: WriteSession) -> Response:
    # One statement, nothing loaded; rows that refer to the user go with it where their
    # foreign key says ON DELETE CASCADE.
    deleted = await session.scalar(delete(User).where(User.id == user_id).returning(User.id))
    if deleted is None:
        raise HTTPException(404, "user not found")
    await session.commit()
    return Response(status_code=204)
