"""Every failure's answer, decided in one place: the client's mistake, a bug, or the database.

- The client's mistake is a 4xx: mostly refused by the schemas before any SQL; what they
  miss, the database refuses (integrity: 409 or 422; a value it cannot store: 422).
- A row deleted or changed by another request while this one ran: 404 or 409.
- The database really away (no connection, shutting down, out of resources, no free
  connection in time): 503 with `Retry-After`. Too slow: 504.
- A COMMIT whose outcome is unknown (the connection died after it was sent): 502,
  without `Retry-After`: the write may have been stored, so a blind retry could repeat it.
- Anything else is the code's bug: 500 "internal error", its traceback in the log.

Log lines name the request and the error's class, SQLSTATE and constraint, never a
message that could quote a parameter value (pg_runtime/error_log.py).
"""

import logging
from dataclasses import dataclass
from typing import Any

from asyncpg.exceptions import InterfaceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, NoResultFound
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pg_runtime.error_log import column, safe_traceback
from pg_runtime.failures import (
    CommitOutcomeUnknownError,
    DatabaseNoAnswerError,
    DatabaseUnavailableError,
    constraint,
    describe,
    driver_error,
    sqlstate,
)
from pg_runtime.sessions import ReadOnlySessionError
from pg_runtime.validation_answers import validation_answer

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True)
class Answer:
    status: int
    detail: str
    # Logged with the traceback: the code's bug, or a failure nobody foresaw.
    is_bug: bool = False
    retry_after: bool = False
    constraint: str | None = None
    column: str | None = None


INTERNAL_ERROR = Answer(500, "internal error", is_bug=True)
NOTHING_WRITTEN = Answer(500, "internal error; nothing was written", is_bug=True)

# SQLSTATE -> answer. https://www.postgresql.org/docs/current/errcodes-appendix.html
_BY_SQLSTATE = {
    "23505": Answer(409, "already exists"),  # unique_violation
    "23503": Answer(409, "refers to a row that does not exist, or is still referred to"),
    "23P01": Answer(409, "conflicts with an existing row"),  # exclusion_violation
    "23502": Answer(422, "a required value is missing"),  # not_null_violation
    "23514": Answer(422, "a value is out of range"),  # check_violation
    # Concurrent work got in the way; the same request may succeed when sent again.
    "40001": Answer(409, "conflicted with concurrent work; try again"),  # serialization
    "40P01": Answer(409, "conflicted with concurrent work; try again"),  # deadlock
    "55P03": Answer(409, "the data is locked by other work; try again"),  # lock_not_available
    # query_canceled: DB_STATEMENT_TIMEOUT ran out (or an operator cancelled the query).
    "57014": Answer(504, "the database took too long to answer"),
    # A write in a GET request, refused by its read-only connection (pg_runtime/engine.py).
    "25006": NOTHING_WRITTEN,
}
# By SQLSTATE class (its first two characters).
_UNAVAILABLE = Answer(503, "database unavailable; try again", retry_after=True)
_BY_SQLSTATE_CLASS = {
    "22": Answer(422, "a value cannot be stored"),  # data exception
    "23": Answer(409, "conflicts with data"),  # integrity, other than the above
    "08": _UNAVAILABLE,  # connection exception
    "53": _UNAVAILABLE,  # insufficient resources: too many connections, disk full
    "57": _UNAVAILABLE,  # 57P01-57P03: shutting down, or not accepting connections yet
}
_BY_TYPE: dict[type[Exception], Answer] = {
    DatabaseUnavailableError: _UNAVAILABLE,
    PoolTimeoutError: Answer(503, "database busy; try again", retry_after=True),
    DatabaseNoAnswerError: Answer(504, "the database took too long to answer"),
    CommitOutcomeUnknownError: Answer(
        502,
        "the connection to the database was lost during the commit: the change may or may "
        "not have been stored; read it back before trying again",
    ),
    StaleDataError: Answer(409, "changed or deleted by another request meanwhile; read it again"),
    ObjectDeletedError: Answer(404, "deleted by another request meanwhile"),
    NoResultFound: Answer(404, "not found"),
    ReadOnlySessionError: NOTHING_WRITTEN,
}


def answer_for(exc: Exception) -> Answer:
    """How the app answers `exc`, an exception no handler caught."""
    for kind in type(exc).__mro__:
        if kind in _BY_TYPE:
            return _BY_TYPE[kind]
    if not isinstance(exc, DBAPIError):
        return INTERNAL_ERROR
    code = sqlstate(exc) or ""
    answer = _BY_SQLSTATE.get(code) or _BY_SQLSTATE_CLASS.get(code[:2])
    if answer is None and _refused_by_driver(driver_error(exc)):
        # asyncpg refused a value before sending it (an int beyond its column's type).
        answer = _BY_SQLSTATE_CLASS["22"]
    if answer is None and exc.connection_invalidated:
        answer = _UNAVAILABLE  # the connection was lost in the middle of the statement
    if answer is None:
        return INTERNAL_ERROR
    if isinstance(exc, IntegrityError) or code.startswith("22"):
        return Answer(answer.status, answer.detail, constraint=constraint(exc), column=column(exc))
    return answer


def _refused_by_driver(error: BaseException | None) -> bool:
    # asyncpg's client-side DataError (a value it cannot encode) is an InterfaceError and a
    # ValueError; its class lives in a private module, its bases are public.
    return isinstance(error, InterfaceError) and isinstance(error, ValueError)


def _body(answer: Answer) -> dict[str, Any]:
    if answer.status != 422:
        body: dict[str, Any] = {"detail": answer.detail}
        if answer.constraint:
            body["constraint"] = answer.constraint
        return body
    # The shape of FastAPI's own 422, so that a client reads one kind of 422.
    error: dict[str, Any] = {
        "loc": ["body", answer.column] if answer.column else ["body"],
        "msg": answer.detail,
        "type": "refused_by_database",
    }
    if answer.constraint:
        error["ctx"] = {"constraint": answer.constraint}
    return {"detail": [error]}


def error_response(request: Request, exc: Exception) -> JSONResponse:
    answer = answer_for(exc)
    where = f"{request.method} {request.url.path}"
    if answer.is_bug:
        logger.error("%s failed with %s\n%s", where, describe(exc), safe_traceback(exc))
    elif answer.status >= 500:
        logger.warning("%s answered %d: %s", where, answer.status, describe(exc))
    else:
        logger.info("%s answered %d: %s", where, answer.status, describe(exc))
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if answer.retry_after else None
    return JSONResponse(_body(answer), status_code=answer.status, headers=headers)


class ErrorAnswerMiddleware:
    """Answers what escapes the handlers, in place of Starlette's bare 500.

    Starlette's own catch-all handler re-raises after answering, and the server then logs
    the exception's message, which for a database error can quote a parameter value.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        failed_to_send: Exception | None = None

        async def send_and_note_start(message: Message) -> None:
            nonlocal started, failed_to_send
            started = started or message["type"] == "http.response.start"
            try:
                await send(message)
            except Exception as exc:
                failed_to_send = exc
                raise

        try:
            await self.app(scope, receive, send_and_note_start)
        except Exception as exc:
            if exc is failed_to_send:
                # The layers outside said so (FastAPI's body limit signals its own 413 this
                # way, a client gone): theirs to handle.
                raise
            request = Request(scope)
            if started:
                # Too late to answer. Not re-raised: the server would log its message; the
                # unfinished response makes the server close the connection.
                logger.error(
                    "%s %s failed after its answer began: %s\n%s",
                    request.method,
                    request.url.path,
                    describe(exc),
                    safe_traceback(exc),
                )
                return
            await error_response(request, exc)(scope, receive, send)


def add_error_handlers(app: FastAPI) -> None:
    app.add_middleware(ErrorAnswerMiddleware)
    app.add_exception_handler(RequestValidationError, validation_answer)
