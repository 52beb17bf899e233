"""Database errors as HTTP answers: one place decides, by SQLSTATE, what a client sees."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from orm.session import ReadOnlySessionError

logger = logging.getLogger(__name__)

# SQLSTATE -> (status, what the client did). https://www.postgresql.org/docs/current/errcodes-appendix.html
_INTEGRITY_ANSWERS = {
    "23505": (409, "already exists"),  # unique_violation
    "23503": (409, "refers to a row that does not exist, or is still referred to"),  # FK
    "23P01": (409, "conflicts with an existing row"),  # exclusion_violation
    "23502": (422, "a required value is missing"),  # not_null_violation
    "23514": (422, "a value is out of range"),  # check_violation
}


def _sqlstate(exc: DBAPIError) -> str | None:
    # SQLAlchemy's asyncpg adapter keeps the server's code on the DBAPI exception.
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(code) if code else None


def _constraint(exc: DBAPIError) -> str | None:
    # The asyncpg exception under the adapter names the constraint; the naming
    # convention in orm/base.py makes that name stable and meaningful.
    driver_error = getattr(exc.orig, "__cause__", None)
    name = getattr(driver_error, "constraint_name", None)
    return str(name) if name else None


async def integrity_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    status, detail = _INTEGRITY_ANSWERS.get(_sqlstate(exc) or "", (409, "conflicts with data"))
    return JSONResponse({"detail": detail, "constraint": _constraint(exc)}, status_code=status)


# SQLSTATE -> (status, detail) of failures that are the server's, not the client's.
_SERVER_ANSWERS = {
    # query_canceled: DB_STATEMENT_TIMEOUT ran out (or an operator cancelled the query).
    "57014": (504, "the database took too long to answer"),
    "55P03": (503, "the data is locked by other work; try again"),  # lock_not_available
}
_UNAVAILABLE = (503, "database unavailable")


def _server_answer(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, PoolTimeoutError):  # no free connection within DB_POOL_TIMEOUT
        return 503, "database busy; try again"
    sqlstate = _sqlstate(exc) if isinstance(exc, DBAPIError) else None
    return _SERVER_ANSWERS.get(sqlstate or "", _UNAVAILABLE)


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # str(exc) carries the SQL and its parameters: log the kind of failure only.
    sqlstate = _sqlstate(exc) if isinstance(exc, DBAPIError) else None
    logger.error(
        "database error on %s %s: %s (sqlstate %s)",
        request.method,
        request.url.path,
        type(exc).__name__,
        sqlstate,
    )
    status, detail = _server_answer(exc)
    return JSONResponse({"detail": detail}, status_code=status)


async def read_only_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # The handler's bug, not the client's: a GET's session refused a write (orm/session.py).
    logger.error(
        "%s %s tried to write through its read-only session; nothing was written "
        "(writes belong in POST, PUT, PATCH or DELETE handlers)",
        request.method,
        request.url.path,
    )
    return JSONResponse({"detail": "internal error; nothing was written"}, status_code=500)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ReadOnlySessionError, read_only_error_handler)
    app.add_exception_handler(IntegrityError, integrity_error_handler)
    app.add_exception_handler(SQLAlchemyError, database_error_handler)
    # A connection the pool fails to open is not wrapped by SQLAlchemy: asyncpg's own
    # OSError comes through as it is (ConnectionRefusedError while the server restarts;
    # TimeoutError, an OSError, after DB_CONNECT_TIMEOUT). Unhandled, it was a 500 and a
    # traceback. A request's only I/O here is the database, as /health assumes too.
    app.add_exception_handler(OSError, database_error_handler)
