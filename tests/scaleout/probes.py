"""Routes of the standby tests' own, on a table of their own: the example's may be gone."""

from collections.abc import Callable
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.dependencies import ReadSession, WriteSession
from app.factory import create_app
from app.settings import Settings

PROBES = "/probes"
_INSERT = text("INSERT INTO standby_probe DEFAULT VALUES RETURNING id")
# A row's id, and whether the server that found it is a standby.
_READ = text(
    "SELECT id, pg_is_in_recovery() AS on_standby FROM standby_probe"
    " WHERE id = :id AND pg_sleep(:pause) IS NOT NULL"
)


async def create_probe_table(database_url: URL) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE standby_probe (id serial PRIMARY KEY)"))
    await engine.dispose()


def app_with_probes(settings: Settings) -> FastAPI:
    """The app, plus POST /probes (a row on the primary) and GET /probes/{id}: the row,
    found where the read was routed, and `?pause=` seconds spent there first."""
    app = create_app(settings)

    @app.post(PROBES, status_code=201)
    async def add_probe(session: WriteSession) -> dict[str, int | bool]:
        # A read in a request that writes: on the primary, standbys or not.
        on_standby = await session.scalar(text("SELECT pg_is_in_recovery()"))
        probe_id = await session.scalar(_INSERT)
        await session.commit()
        assert probe_id is not None
        return {"id": probe_id, "on_standby": bool(on_standby)}

    @app.get(PROBES + "/{probe_id}")
    async def read_probe(
        probe_id: int, session: ReadSession, pause: float = 0
    ) -> dict[str, int | bool]:
        row = (await session.execute(_READ, {"id": probe_id, "pause": pause})).one_or_none()
        if row is None:
            raise HTTPException(404, "not found")
        return {"id": row.id, "on_standby": row.on_standby}

    @app.get(PROBES + "/{probe_id}/core")
    async def read_probe_core(probe_id: int, session: ReadSession) -> dict[str, int | bool]:
        # Core on the session's connection, past the ORM's execute.
        connection = await session.connection()
        row = (await connection.execute(_READ, {"id": probe_id, "pause": 0})).one()
        return {"id": row.id, "on_standby": row.on_standby}

    return app


async def add_probe(client: AsyncClient, token: str | None = "0/0") -> tuple[int, str | None]:
    """A new row's id, and the consistency token its response carried: a client that
    carries one (`token`) gets one back."""
    headers = {"X-Consistency-Token": token} if token else {}
    response = await client.post(PROBES, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["on_standby"] is False, "a request that writes reads on the primary"
    return response.json()["id"], response.headers.get("X-Consistency-Token")


async def read_probe(
    client: AsyncClient, probe_id: int, token: str | None = None, pause: float = 0
) -> Response:
    headers = {"X-Consistency-Token": token} if token else {}
    return await client.get(f"{PROBES}/{probe_id}", params={"pause": pause}, headers=headers)


async def readiness_when(
    client: AsyncClient, standby_state: Callable[[str], bool], seconds: float = 10
) -> dict[str, Any]:
    """/health/ready's body, once the first standby's state satisfies `standby_state`."""
    with anyio.fail_after(seconds):
        while True:
            ready: dict[str, Any] = (await client.get("/health/ready")).json()
            if standby_state(ready["standbys"][0]["state"]):
                return ready
            await anyio.sleep(0.02)
