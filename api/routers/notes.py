"""HTTP endpoints for notes."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Response
from pg_runtime.responses import BODY, READS, WRITES, errors
from sqlalchemy import Integer, Select, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY

from api.dependencies import ReadSession, WriteSession
from api.paging import Limit, Offset
from api.schemas.fields import path_id, query_id
from api.schemas.notes import NoteCreate, NoteRead, NoteUpdate
from orm.models import Note

router = APIRouter(prefix="/notes", tags=["notes"])

NoteId = Annotated[int, path_id("the note's id")]
AuthorId = Annotated[int | None, query_id("only this user's notes")]


@router.post("", status_code=201, responses=errors(*WRITES, *BODY))
async def create_note(body: NoteCreate, session: WriteSession) -> NoteRead:
    # No check that the user exists: the foreign key does it, and pg_runtime/errors.py answers 409.
    note = Note(**body.model_dump())
    session.add(note)
    await session.commit()
    return NoteRead.model_validate(note)


# The reads' statements, built once (api/routers/users.py says why).
NOTE_BY_ID = select(Note).where(Note.id == bindparam("note_id"))
NOTES_PAGE = select(Note).order_by(Note.id).limit(bindparam("limit")).offset(bindparam("offset"))
# One user's page reads ix_note_user_id_id (user_id, id) in order and stops after offset +
# limit entries, however many notes this user or another has. Written `= ANY(array)` and
# ordered by both columns so that nothing else gives that order: with `user_id = :id` the
# planner also considers walking pk_note and skipping other users' notes, which it picks
# when it believes this user holds most of the table (and then reads every note numbered
# before theirs), and fetching every note of the user to sort them
# (tests/api/test_notes_of_a_heavy_user.py).
USER_NOTES_PAGE = (
    select(Note)
    .where(Note.user_id == any_(bindparam("user_ids", type_=ARRAY(Integer))))
    .order_by(Note.user_id, Note.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


def notes_page(
    user_id: int | None, limit: int, offset: int
) -> tuple[Select[Note], dict[str, object]]:
    """The statement of a page of notes in id order, of one user's if `user_id` is given,
    and its parameters."""
    page: dict[str, object] = {"limit": limit, "offset": offset}
    if user_id is None:
        return NOTES_PAGE, page
    return USER_NOTES_PAGE, page | {"user_ids": [user_id]}


@router.get("", responses=errors(*READS))
async def list_notes(
    session: ReadSession, user_id: AuthorId = None, limit: Limit = 20, offset: Offset = 0
) -> list[NoteRead]:
    notes = await session.scalars(*notes_page(user_id, limit, offset))
    return [NoteRead.model_validate(note) for note in notes]


@router.get("/{note_id}", responses=errors(404, *READS))
async def read_note(note_id: NoteId, session: ReadSession) -> NoteRead:
    note = await session.scalar(NOTE_BY_ID, {"note_id": note_id})
    if note is None:
        raise HTTPException(404, "note not found")
    return NoteRead.model_validate(note)


@router.patch("/{note_id}", responses=errors(404, *WRITES, *BODY))
async def update_note(note_id: NoteId, body: NoteUpdate, session: WriteSession) -> NoteRead:
    note = await session.get(Note, note_id)
    if note is None:
        raise HTTPException(404, "note not found")
    for field, value in body.changes().items():
        setattr(note, field, value)
    await session.commit()
    return NoteRead.model_validate(note)


@router.delete("/{note_id}", status_code=204, responses=errors(404, *WRITES))
async def delete_note(note_id: NoteId, session: WriteSession) -> Response:
    deleted = await session.scalar(delete(Note).where(Note.id == note_id).returning(Note.id))
    if deleted is None:
        raise HTTPException(404, "note not found")
    await session.commit()
    return Response(status_code=204)
