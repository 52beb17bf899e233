"""The advisory lock every online Alembic run holds, so that instances migrate in turn."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

# "alembic" in ASCII: instances that run `alembic upgrade head` at once take turns, and
# the later ones find nothing left to do.
MIGRATION_LOCK_KEY = 0x616C656D626963

# How long one attempt waits for the lock before it starts again; it must stay below the
# server's deadlock_timeout (1 s by default). See _wait_for_the_lock.
_ATTEMPT = "200ms"
_RETRY_SQLSTATES = {"55P03", "40P01"}  # lock_not_available, deadlock_detected


@contextmanager
def migration_lock(connection: Connection, lock_timeout: float) -> Iterator[None]:
    """Hold the migration lock on `connection`, and set its lock_timeout, for one run."""
    _wait_for_the_lock(connection)
    # Only now: lock_timeout also bounds the wait for the advisory lock, and an instance
    # must wait for another's migrations however long they take.
    previous = connection.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    _set_lock_timeout(connection, f"{round(lock_timeout * 1000)}ms")
    # End the transaction these statements began: Alembic would take it for the caller's
    # and never commit the migrations it runs.
    connection.commit()
    try:
        yield
    finally:
        if not connection.invalidated:  # a lost connection has lost its lock too
            if connection.in_transaction():
                connection.rollback()
            _set_lock_timeout(connection, previous)
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def _wait_for_the_lock(connection: Connection) -> None:
    """Take the session-level lock, waiting in short transactions.

    Session level: a transaction-level lock would go with the first commit, and
    autocommit_block() (CREATE INDEX CONCURRENTLY) commits. In short waits: while one
    instance builds an index CONCURRENTLY, PostgreSQL waits for every transaction that
    holds an older snapshot, and a `SELECT pg_advisory_lock()` waiting for that instance
    holds one: a deadlock, which PostgreSQL breaks by cancelling one side, maybe the
    migration. A wait shorter than deadlock_timeout ends before that check runs, and its
    retry is a new transaction, which the index build does not wait for.
    """
    while True:
        try:
            connection.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": _ATTEMPT})
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        except DBAPIError as exc:
            connection.rollback()
            if getattr(exc.orig, "sqlstate", None) not in _RETRY_SQLSTATES:
                raise
        else:
            connection.commit()
            return


def _set_lock_timeout(connection: Connection, value: str) -> None:
    connection.execute(text("SELECT set_config('lock_timeout', :value, false)"), {"value": value})
