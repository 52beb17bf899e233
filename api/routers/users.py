"""HTTP endpoints for users."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response
from pg_runtime.responses import BODY, READS, WRITES, errors
from sqlalchemy import Integer, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from api.dependencies import ReadSession, WriteSession
from api.paging import Limit, Offset
from api.schemas.fields import path_id
from api.schemas.users import UserCreate, UserRead, UserUpdate, UserWithNotesRead
from orm.models import Note, User
from orm.models.note import FIRST_NOTES_ONLY, FirstNote

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, path_id("the user's id")]

# Built once, with bind parameters, for the two GET routes only: the hot path that
# bench/throughput.py measures, where a statement built per request pays for its cache key
# each time. Every other route builds its statement in the handler.

# joinedload: the user and its first notes in one query (one round trip).
USER_WITH_NOTES = (
    select(User).options(joinedload(User.first_notes)).where(User.id == bindparam("id"))
)
PAGE = select(User).order_by(User.id).limit(bindparam("limit")).offset(bindparam("offset"))
# A page's first notes: one more query, whatever the page's size (a join would repeat
# users), filtered on note.user_id so that the server numbers only those users' notes
# (orm/models/note.py).
FIRST_NOTES_OF = (
    select(FirstNote)
    .where(FirstNote.user_id == any_(bindparam("ids", type_=ARRAY(Integer))), FIRST_NOTES_ONLY)
    .order_by(FirstNote.id)
)


async def load_first_notes(session: AsyncSession, users: Sequence[User]) -> None:
    """Set `first_notes` on each of `users`, in one query."""
    by_user: dict[int, list[Note]] = defaultdict(list)
    for note in await session.scalars(FIRST_NOTES_OF, {"ids": [user.id for user in users]}):
        by_user[note.user_id].append(note)
    for user in users:
        set_committed_value(user, "first_notes", by_user[user.id])


# Handlers that write commit before they return: a unique or foreign-key violation found
# at commit time then still reaches pg_runtime/errors.py and becomes a 409, and the client never
# sees a success for a write that was not stored.


@router.post("", status_code=201, responses=errors(*WRITES, *BODY))
async def create_user(body: UserCreate, session: WriteSession) -> UserRead:
    user = User(**body.model_dump())
    session.add(user)
    await session.commit()
    return UserRead.model_validate(user)


@router.get("", responses=errors(*READS))
async def list_users(
    session: ReadSession, limit: Limit = 20, offset: Offset = 0
) -> list[UserWithNotesRead]:
    users = (await session.scalars(PAGE, {"limit": limit, "offset": offset})).all()
    await load_first_notes(session, users)
    return [UserWithNotesRead.model_validate(user) for user in users]


@router.get("/{user_id}", responses=errors(404, *READS))
async def read_user(user_id: UserId, session: ReadSession) -> UserWithNotesRead:
    # unique(): the join returns the user once per note.
    user = (await session.scalars(USER_WITH_NOTES, {"id": user_id})).unique().one_or_none()
    if user is None:
        raise HTTPException(404, "user not found")
    return UserWithNotesRead.model_validate(user)


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
    # The database deletes the user's notes (ON DELETE CASCADE): one statement, no loading.
    deleted = await session.scalar(delete(User).where(User.id == user_id).returning(User.id))
    if deleted is None:
        raise HTTPException(404, "user not found")
    await session.commit()
    return Response(status_code=204)
