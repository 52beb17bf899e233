"""Database failures named where they arise, so that one of them is never taken for another.

asyncpg reports a refused connection, a connect timeout and a query that got no answer as
builtin `OSError`s and `TimeoutError`s, which a handler's own `asyncio.timeout` or any other
I/O raises too. The engine's events (orm/engine.py) turn the database's into these, and
api/errors.py answers each with its own status.
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
