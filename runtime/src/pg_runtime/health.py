"""Health probes: GET /health/live, /health/ready, and /health (is the database reachable)."""

import ssl

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pg_runtime.failures import DatabaseNoAnswerError, DatabaseUnavailableError, describe
from pg_runtime.health_schemas import Health, Liveness, Readiness, StandbyReadiness
from pg_runtime.migrations import Migrations, database_heads
from pg_runtime.responses import errors
from pg_runtime.sessions import DatabaseSessionManager

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


def health_router(sessionmanager: DatabaseSessionManager, migrations: Migrations) -> APIRouter:
    """The probes, on `sessionmanager`'s connections, against `migrations`' head revision."""
    router = APIRouter(tags=["health"])

    @router.get("/health", responses={503: {"model": Health}, **errors(500)})
    async def read_health(response: Response) -> Health:
        """200 when the database answers a query, 503 when it does not."""
        try:
            async with sessionmanager.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except _UNREACHABLE:
            response.status_code = 503
            return Health(status="unavailable", database="unreachable")
        return Health(status="ok", database="reachable")

    @router.get("/health/live", responses=errors(500))
    async def read_liveness() -> Liveness:
        """200 while the process serves requests; it does not touch the database."""
        return Liveness(status="ok")

    @router.get("/health/ready", responses={503: {"model": Readiness}, **errors(500)})
    async def read_readiness(response: Response) -> Readiness:
        """200 when the database is reachable and has this code's head revision, or a later one.

        Standbys (DATABASE_READ_URL) never make it 503: reads fall back to the primary. One that
        does not serve reads makes it `degraded`.
        """
        needed = migrations.code_head()
        try:
            async with sessionmanager.connect() as connection:
                heads = await database_heads(connection)
        except _UNREACHABLE as error:
            response.status_code = 503
            return Readiness(
                status="not ready",
                database="unreachable",
                code_revision=needed,
                database_revisions=None,
                reason=unreachable_reason(error),
            )
        ready = migrations.is_schema_ready(heads)
        if not ready:
            response.status_code = 503
        standbys = [
            StandbyReadiness(
                name=standby.name, state=standby.state, lag_bytes=standby.lag, reason=standby.reason
            )
            for standby in sessionmanager.standbys
        ]
        degraded = any(standby.state != "ok" for standby in standbys)
        return Readiness(
            status="not ready" if not ready else "degraded" if degraded else "ready",
            database="reachable",
            code_revision=needed,
            database_revisions=list(heads),
            standbys=standbys or None,
        )

    return router
