"""The template's app, plus its user routes written again on a bare asyncpg pool.

The reference bench/throughput.py measures the ORM endpoints against: the same rows and
response bodies from the same process and worker, with what raw-asyncpg kits do instead
of the ORM (no session, no unit of work; one statement per route and no transaction
where one statement suffices). Served only by the benchmark
(`python -m bench.raw_app`, as `python main.py` serves the template): not an API to copy.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, HTTPException, Request
from pg_runtime.engine import session_timeouts
from pg_runtime.serving import serve, settings_or_exit, worker_app

from api.paging import Limit, Offset
from api.schemas.users import UserCreate, UserRead, UserWithNotesRead
from app.factory import create_app
from app.settings import load_settings
from orm.migrations import migrations

router = APIRouter(prefix="/raw/users")

USER = "u.id, u.email, u.name, u.role, u.created_at"
NOTE = "n.id AS note_id, n.title, n.body, n.created_at AS note_created_at"


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.raw_pool
    return pool


def _with_notes(rows: list[asyncpg.Record]) -> dict[str, Any]:
    """One user's row joined with its notes (none: one row of NULL note columns)."""
    user = {key: rows[0][key] for key in ("id", "email", "name", "role", "created_at")}
    user["first_notes"] = [  # the name UserWithNotesRead reads it by
        {
            "id": row["note_id"],
            "user_id": row["id"],
            "title": row["title"],
            "body": row["body"],
            "created_at": row["note_created_at"],
        }
        for row in rows
        if row["note_id"] is not None
    ]
    return user


@router.post("", status_code=201)
async def create_user(body: UserCreate, request: Request) -> UserRead:
    row = await _pool(request).fetchrow(
        "INSERT INTO user_account (email, name) VALUES ($1, $2) "
        "RETURNING id, email, name, role, created_at",
        body.email,
        body.name,
    )
    return UserRead.model_validate(dict(row))


@router.get("")
async def list_users(
    request: Request, limit: Limit = 20, offset: Offset = 0
) -> list[UserWithNotesRead]:
    async with _pool(request).acquire() as connection:
        users = await connection.fetch(
            f"SELECT {USER} FROM user_account u ORDER BY u.id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
        notes = await connection.fetch(
            "SELECT id, user_id, title, body, created_at FROM note "
            "WHERE user_id = ANY($1) ORDER BY id",
            [user["id"] for user in users],
        )
    by_user: dict[int, list[dict[str, Any]]] = {user["id"]: [] for user in users}
    for note in notes:
        by_user[note["user_id"]].append(dict(note))
    return [
        UserWithNotesRead.model_validate(dict(user) | {"first_notes": by_user[user["id"]]})
        for user in users
    ]


@router.get("/{user_id}")
async def read_user(user_id: int, request: Request) -> UserWithNotesRead:
    rows = await _pool(request).fetch(
        f"SELECT {USER}, {NOTE} FROM user_account u LEFT JOIN note n ON n.user_id = u.id "
        "WHERE u.id = $1 ORDER BY n.id",
        user_id,
    )
    if not rows:
        raise HTTPException(404, "user not found")
    return UserWithNotesRead.model_validate(_with_notes(rows))


settings = settings_or_exit(load_settings)
app = worker_app(settings, create_app)
template_lifespan = app.router.lifespan_context


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    assert settings.database_url is not None
    # Sized and configured as the ORM's pool is, so that neither waits for connections more.
    options: dict[str, Any] = {
        "min_size": settings.db_pool_size,
        "max_size": settings.db_pool_size + settings.db_max_overflow,
    }
    if settings.db_behind_pgbouncer:
        options["statement_cache_size"] = 0
    else:
        options["server_settings"] = session_timeouts(settings)
    url = settings.database_url.set(drivername="postgresql")
    async with template_lifespan(app):
        pool = await asyncpg.create_pool(url.render_as_string(hide_password=False), **options)
        app.state.raw_pool = pool
        try:
            yield
        finally:
            await pool.close()


app.router.lifespan_context = lifespan
app.include_router(router)

if __name__ == "__main__":
    serve(settings, migrations, "bench.raw_app:app")
