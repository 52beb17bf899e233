"""Log lines for failures that never quote a value: a driver's message can hold one."""

import traceback
from types import TracebackType

from sqlalchemy.exc import DBAPIError, StatementError

from pg_runtime.failures import describe, driver_error

# Exceptions whose message may quote SQL parameters or row data: asyncpg's own (e.g.
# "invalid input for query argument $1: 'secret'"), and SQLAlchemy's that embed the SQL
# and its parameters. They are written as their class, SQLSTATE and constraint only.
_QUOTING_MODULES = ("asyncpg", "sqlalchemy.dialects")


def column(exc: BaseException) -> str | None:
    name = getattr(driver_error(exc), "column_name", None)
    return str(name) if name else None


def _may_quote_values(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError | StatementError) or type(exc).__module__.startswith(
        _QUOTING_MODULES
    )


def safe_traceback(exc: BaseException) -> str:
    """The traceback of `exc` and its causes, with every database message left out.

    Below a database exception, causes lose their messages too: they are the driver's.
    """
    chain: list[tuple[BaseException, bool]] = []
    quoting = False
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        quoting = quoting or _may_quote_values(current)
        chain.append((current, quoting))
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    parts = []
    for error, hide_message in reversed(chain):
        header = describe(error) if hide_message else _first_line(error)
        parts.append(_frames(error.__traceback__) + header)
    return "\nwhich led to:\n".join(parts)


def _first_line(exc: BaseException) -> str:
    message = str(exc).partition("\n")[0]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _frames(tb: TracebackType | None) -> str:
    return "Traceback (most recent call last):\n" + "".join(traceback.format_tb(tb))
