"""HTTP endpoints for probes.

Every answer says whether the server that ran its statements is a standby, so the tests
of read routing see where each read went; GET takes `?pause=` seconds spent there first.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pg_runtime.responses import BODY, READS, WRITES, errors
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, text

from probe.dependencies import ReadSession, WriteSession
from probe.models import Probe

router = APIRouter(prefix="/probes", tags=["probes"])

ProbeId = Annotated[int, Path(ge=1, le=2**31 - 1)]

# Plain SQL that reads back where it ran, on the session's connection.
_READ = text(
    "SELECT id, name, pg_is_in_recovery() AS on_standby FROM probe"
    " WHERE id = :id AND pg_sleep(:pause) IS NOT NULL"
)
_ON_STANDBY = text("SELECT pg_is_in_recovery()")


class ProbeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")


class ProbeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")


class ProbeRead(BaseModel):
    id: int
    name: str | None
    on_standby: bool


@router.post("", status_code=201, responses=errors(*WRITES, *BODY))
async def create_probe(session: WriteSession, body: ProbeCreate | None = None) -> ProbeRead:
    # A read in a request that writes: on the primary, standbys or not.
    on_standby = bool(await session.scalar(_ON_STANDBY))
    probe = Probe(name=body.name if body else None)
    session.add(probe)
    await session.commit()
    return ProbeRead(id=probe.id, name=probe.name, on_standby=on_standby)


@router.get("", responses=errors(*READS))
async def list_probes(session: ReadSession, limit: int = 20) -> list[ProbeRead]:
    on_standby = bool(await session.scalar(_ON_STANDBY))
    probes = await session.scalars(select(Probe).order_by(Probe.id).limit(limit))
    return [ProbeRead(id=p.id, name=p.name, on_standby=on_standby) for p in probes]


@router.get("/{probe_id}", responses=errors(404, *READS))
async def read_probe(probe_id: ProbeId, session: ReadSession, pause: float = 0) -> ProbeRead:
    row = (await session.execute(_READ, {"id": probe_id, "pause": pause})).one_or_none()
    if row is None:
        raise HTTPException(404, "probe not found")
    return ProbeRead(id=row.id, name=row.name, on_standby=row.on_standby)


@router.get("/{probe_id}/core", responses=errors(404, *READS))
async def read_probe_core(probe_id: ProbeId, session: ReadSession) -> ProbeRead:
    # Core on the session's connection, past the ORM's execute.
    connection = await session.connection()
    row = (await connection.execute(_READ, {"id": probe_id, "pause": 0})).one_or_none()
    if row is None:
        raise HTTPException(404, "probe not found")
    return ProbeRead(id=row.id, name=row.name, on_standby=row.on_standby)


@router.patch("/{probe_id}", responses=errors(404, *WRITES, *BODY))
async def update_probe(probe_id: ProbeId, body: ProbeUpdate, session: WriteSession) -> ProbeRead:
    probe = await session.get(Probe, probe_id)
    if probe is None:
        raise HTTPException(404, "probe not found")
    probe.name = body.name
    await session.commit()
    return ProbeRead(id=probe.id, name=probe.name, on_standby=False)


@router.delete("/{probe_id}", status_code=204, responses=errors(404, *WRITES))
async def delete_probe(probe_id: ProbeId, session: WriteSession) -> Response:
    deleted = await session.scalar(delete(Probe).where(Probe.id == probe_id).returning(Probe.id))
    if deleted is None:
        raise HTTPException(404, "probe not found")
    await session.commit()
    return Response(status_code=204)
