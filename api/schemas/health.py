"""The bodies of the health probes."""

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["reachable", "unreachable"]


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: Literal["reachable", "unreachable"]
    # The revision this code needs (None: it has none yet), and those the database is at
    # (None: unreachable).
    code_revision: str | None
    database_revisions: list[str] | None
    # Why the database is unreachable: the error's class, and for TLS what failed.
    reason: str | None = None
