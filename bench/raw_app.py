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
from api.schemas.users import UserCreate, UserRead
from app.factory import create_app
from app.settings import load_settings
from orm.migrations import migrations

router = APIRouter(prefix="/raw/users")

USER = "id, email, name, role, created_at"


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.raw_pool
    return pool


@router.post("", status_code=201)
async def create_user(body: UserCreate, request: Request) -> UserRead:
    row = await _pool(request).fetchrow(
        f"INSERT INTO user_account (email, name) VALUES ($1, $2) RETURNING {USER}",
        body.email,
        body.name,
    )
    return UserRead.model_validate(dict(row))


@router.get("")
async def list_users(request: Request, limit: Limit = 20, offset: Offset = 0) -> list[UserRead]:
    users = await _pool(request).fetch(
        f"SELECT {USER} FROM user_account ORDER BY id LIMIT $1 OFFSET $2", limit, offset
    )
    return [UserRead.model_validate(dict(user)) for user in users]


@router.get("/{user_id}")
async def read_user(user_id: int, request: Request) -> UserRead:
    row = await _pool(request).fetchrow(f"SELECT {USER} FROM user_account WHERE id = $1", user_id)
    if row is None:
        raise HTTPException(404, "user not found")
    return UserRead.model_validate(dict(row))


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
