"""Database failures named where they arise, so that one of them is never taken for another.

asyncpg reports a refused connection, a connect timeout and a query that got no answer as
builtin `OSError`s and `TimeoutError`s, which a handler's own `asyncio.timeout` or any other
I/O raises too. The engine's events (pg_runtime/engine.py) turn the database's into these, and
pg_runtime/errors.py answers each with its own status.

And what a log line may say of a failure: a driver's message can quote a parameter value,
so a failure is described by its class, SQLSTATE and constraint only.
"""


class DatabaseUnavailableError(Exception):
    """No connection to the server could be opened: refused, unreachable or timed out."""


class DatabaseNoAnswerError(Exception):
    """A statement got no answer within the driver's command timeout.

    The server's own `statement_timeout` fires first when the server is alive; this one
    fires when it is not (a failover, a network that drops packets). The connection is
    discarded, never handed to the next request.
    """


class CommitOutcomeUnknownError(Exception):
    """The connection was lost or went silent after COMMIT was sent.

    The transaction may or may not have been committed: retrying blindly could apply a
    write twice.
    """


def sqlstate(exc: BaseException) -> str | None:
    """The server's SQLSTATE under a SQLAlchemy error, if the server sent one."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return str(code) if code else None


def driver_error(exc: BaseException) -> BaseException | None:
    """The asyncpg exception under SQLAlchemy's wrapper and its DBAPI adapter."""
    return getattr(getattr(exc, "orig", None), "__cause__", None)


def constraint(exc: BaseException) -> str | None:
    name = getattr(driver_error(exc), "constraint_name", None)
    return str(name) if name else None


def describe(exc: BaseException) -> str:
    """`ClassName (sqlstate 22021, constraint ck_x)`: what a log line may say of an error."""
    details = [
        f"{label} {value}"
        for label, value in (("sqlstate", sqlstate(exc)), ("constraint", constraint(exc)))
        if value
    ]
    return type(exc).__name__ + (f" ({', '.join(details)})" if details else "")
