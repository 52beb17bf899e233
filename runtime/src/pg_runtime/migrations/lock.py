"""The advisory lock every online Alembic run holds, so that instances migrate in turn."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

# "alembic" in ASCII: instances that run `alembic upgrade head` at once take turns, and
# the later ones find nothing left to do.
MIGRATION_LOCK_KEY = 0x616C656D626963

# How long one attempt waits for the lock before it starts again; it must stay below the
# server's deadlock_timeout (1 s by default). See _wait_for_the_lock.
_ATTEMPT = "200ms"
_RETRY_SQLSTATES = {"55P03", "40P01"}  # lock_not_available, deadlock_detected
# Seconds between the log lines of a migration waiting for another instance's.
_REPORT_EVERY = 10.0
# The session holding the lock: pg_locks splits a bigint advisory key into two int4s.
_HOLDER = text(
    "SELECT a.pid, a.application_name, host(a.client_addr) AS client, a.state, "
    "round(extract(epoch FROM now() - a.backend_start)) AS connected "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.classid = :high AND l.objid = :low "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class MigrationLockTimeoutError(RuntimeError):
    """Another instance held the migration lock longer than MIGRATION_WAIT_TIMEOUT."""


@contextmanager
def migration_lock(
    connection: Connection, lock_timeout: float, wait_timeout: float | None = None
) -> Iterator[None]:
    """Hold the migration lock on `connection`, and set its lock_timeout, for one run.

    Waits for another instance's run at most `wait_timeout` seconds (None: for ever),
    saying who holds the lock every few seconds.
    """
    _wait_for_the_lock(connection, wait_timeout)
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


def _wait_for_the_lock(connection: Connection, wait_timeout: float | None) -> None:
    """Take the session-level lock, waiting in short transactions.

    Session level: a transaction-level lock would go with the first commit, and
    autocommit_block() (CREATE INDEX CONCURRENTLY) commits. In short waits: while one
    instance builds an index CONCURRENTLY, PostgreSQL waits for every transaction that
    holds an older snapshot, and a `SELECT pg_advisory_lock()` waiting for that instance
    holds one: a deadlock, which PostgreSQL breaks by cancelling one side, maybe the
    migration. A wait shorter than deadlock_timeout ends before that check runs, and its
    retry is a new transaction, which the index build does not wait for.
    """
    started = time.monotonic()
    next_report = started
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
        waited = time.monotonic() - started
        if wait_timeout is not None and waited >= wait_timeout:
            raise MigrationLockTimeoutError(
                f"gave up after waiting {waited:.0f} s (MIGRATION_WAIT_TIMEOUT) for another "
                f"instance's migrations; the lock is held by {_holder(connection)}. If that "
                "session is stuck, end it with pg_terminate_backend(pid), then migrate again"
            )
        if time.monotonic() >= next_report:
            logger.warning(
                "waiting for another instance's migrations (%.0f s so far): the lock is held by %s",
                waited,
                _holder(connection),
            )
            next_report += _REPORT_EVERY


def _holder(connection: Connection) -> str:
    key = {"high": MIGRATION_LOCK_KEY >> 32, "low": MIGRATION_LOCK_KEY & 0xFFFFFFFF}
    row = connection.execute(_HOLDER, key).first()
    connection.rollback()
    if row is None:
        return "a session that has just let it go"
    return (
        f"pid {row.pid} (application_name {row.application_name!r}, from "
        f"{row.client or 'a local socket'}, connected {row.connected:.0f} s ago, {row.state})"
    )


def _set_lock_timeout(connection: Connection, value: str) -> None:
    connection.execute(text("SELECT set_config('lock_timeout', :value, false)"), {"value": value})
