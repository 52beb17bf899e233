"""Health probes: GET /health/live, /health/ready, and /health (is the database reachable).

They run on a connection of their own (`DatabaseSessionManager.health_connection`), never
one of the requests' pools: pools busy at peak load must not make every instance look
unready at once. On the API's port they say status only; the details (revision ids,
standbys, why the database is unreachable) are logged when they change.
"""

import logging
import ssl

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pg_runtime.failures import DatabaseNoAnswerError, DatabaseUnavailableError, describe
from pg_runtime.health_schemas import (
    Health,
    Liveness,
    Readiness,
    ReadinessDetails,
    StandbyReadiness,
)
from pg_runtime.migrations import Migrations, database_heads
from pg_runtime.responses import errors
from pg_runtime.sessions import DatabaseSessionManager
from pg_runtime.single_flight import SingleFlight

logger = logging.getLogger(__name__)

# What a failed connection or query raises: SQLAlchemy's errors and pg_runtime/failures.py's.
_UNREACHABLE = (SQLAlchemyError, DatabaseUnavailableError, DatabaseNoAnswerError)


def unreachable_reason(error: Exception) -> str:
    """What an operator needs to fix a connection that fails: never a value or a password."""
    cause = error.__cause__ or error
    if isinstance(cause, ssl.SSLError):
        failed = getattr(cause, "verify_message", None) or cause.reason
        return (
            f"TLS: {type(cause).__name__} ({failed}): check sslmode and sslrootcert in DATABASE_URL"
        )
    return describe(cause)


async def readiness_details(
    sessionmanager: DatabaseSessionManager, migrations: Migrations
) -> ReadinessDetails:
    """Whether this instance is ready, and everything an operator needs to know why (not).

    Ready: the database is reachable and has this code's head revision, or a later one.
    Standbys (DATABASE_READ_URL) never make it not ready: reads fall back to the primary.
    One that does not serve reads makes it `degraded`.
    """
    needed = migrations.code_head()
    try:
        async with sessionmanager.health_connection() as connection:
            heads = await database_heads(connection)
    except _UNREACHABLE as error:
        return ReadinessDetails(
            status="not ready",
            database="unreachable",
            code_revision=needed,
            database_revisions=None,
            reason=unreachable_reason(error),
        )
    standbys = [
        StandbyReadiness(
            name=standby.name, state=standby.state, lag_bytes=standby.lag, reason=standby.reason
        )
        for standby in sessionmanager.standbys
    ]
    degraded = any(standby.state != "ok" for standby in standbys)
    status = "degraded" if degraded else "ready"
    return ReadinessDetails(
        status=status if migrations.is_schema_ready(heads) else "not ready",
        database="reachable",
        code_revision=needed,
        database_revisions=list(heads),
        standbys=standbys or None,
    )


def public_readiness(details: ReadinessDetails) -> Readiness:
    """What the API's port says of `details`: ready or not, and why in general words."""
    if details.status != "not ready":
        return Readiness(status="ready")
    if details.database == "unreachable":
        return Readiness(status="not ready", reason="database unreachable")
    return Readiness(status="not ready", reason="database schema not migrated for this code")


class _ChangesLog:
    """Logs readiness details when they change: an orchestrator probes every few seconds."""

    def __init__(self) -> None:
        self._last: object = None

    def note(self, details: ReadinessDetails) -> None:
        # Not the standbys' lag, which changes at every poll.
        seen = details.model_dump(exclude={"standbys": {"__all__": {"lag_bytes"}}})
        if seen == self._last:
            return
        self._last = seen
        level = logging.INFO if details.status == "ready" else logging.WARNING
        logger.log(level, "readiness: %s", details.model_dump_json(exclude_none=True))


def health_router(sessionmanager: DatabaseSessionManager, migrations: Migrations) -> APIRouter:
    """The probes, on `sessionmanager`'s health connection, against `migrations`' head."""
    router = APIRouter(tags=["health"])
    changes = _ChangesLog()

    async def check_health() -> Health:
        try:
            async with sessionmanager.health_connection() as connection:
                await connection.execute(text("SELECT 1"))
        except _UNREACHABLE:
            return Health(status="unavailable", database="unreachable")
        return Health(status="ok", database="reachable")

    health = SingleFlight(check_health)
    details_of_now = SingleFlight(lambda: readiness_details(sessionmanager, migrations))

    @router.get("/health", responses={503: {"model": Health}, **errors(500)})
    async def read_health(response: Response) -> Health:
        """200 when the database answers a query, 503 when it does not."""
        answer = await health()
        if answer.status != "ok":
            response.status_code = 503
        return answer

    @router.get("/health/live", responses=errors(500))
    async def read_liveness() -> Liveness:
        """200 while the process serves requests; it does not touch the database."""
        return Liveness(status="ok")

    @router.get("/health/ready", responses={503: {"model": Readiness}, **errors(500)})
    async def read_readiness(response: Response) -> Readiness:
        """200 when this instance can serve requests; 503, with a general reason, when not."""
        details = await details_of_now()
        changes.note(details)
        readiness = public_readiness(details)
        if readiness.status != "ready":
            response.status_code = 503
        return readiness

    return router
