"""The bodies of the health probes, and the readiness details an operator gets instead."""

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["reachable", "unreachable"]


class Liveness(BaseModel):
    status: Literal["ok"]


# What anyone who reaches the API's port learns from /health/ready: whether to send it
# traffic, and in general words why not. Revision ids, standbys and driver errors describe
# the deployment: they go to the log (pg_runtime/health.py) and the metrics' port.
NotReadyReason = Literal["database unreachable", "database schema not migrated for this code"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    reason: NotReadyReason | None = None


class StandbyReadiness(BaseModel):
    name: str  # standby-N, in DATABASE_READ_URL's order
    # ok: it serves reads; lagging: more than DB_STANDBY_MAX_LAG behind; down: it failed a
    # poll or a read (reason says how); not a standby: it is not in recovery; unknown: not
    # polled yet.
    state: Literal["unknown", "ok", "lagging", "down", "not a standby"]
    lag_bytes: int | None
    reason: str | None = None


class ReadinessDetails(BaseModel):
    """What an operator needs to know why an instance is (not) ready: never served publicly."""

    # degraded: ready, with reads on the primary that a standby would serve (standbys).
    status: Literal["ready", "degraded", "not ready"]
    database: Literal["reachable", "unreachable"]
    # The revision this code needs (None: it has none yet), and those the database is at
    # (None: unreachable).
    code_revision: str | None
    database_revisions: list[str] | None
    # Why the database is unreachable: the error's class, and for TLS what failed.
    reason: str | None = None
    # With DATABASE_READ_URL: each standby as last polled.
    standbys: list[StandbyReadiness] | None = None
