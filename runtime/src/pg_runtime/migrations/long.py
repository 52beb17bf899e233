"""For revisions whose statements may rightly run long: building an index CONCURRENTLY, a
batched backfill. Every other statement of a migration stays bounded.

A migration's connection has MIGRATION_STATEMENT_TIMEOUT and MIGRATION_LOCK_TIMEOUT
(alembic/env.py, pg_runtime/migrations/lock.py), so a stuck migration fails instead of queueing
the application behind it. A long statement lifts both, explicitly, for its own duration.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

_LIFTED = ("statement_timeout", "lock_timeout")


@contextmanager
def without_timeouts(connection: Connection) -> Iterator[None]:
    """Run the block with no statement or lock timeout, then put both back.

    For statements outside a transaction (inside `autocommit_block()`): a SET LOCAL
    would end with the first statement.
    """
    previous = {
        name: connection.execute(text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
        for name in _LIFTED
    }
    for name in _LIFTED:
        connection.execute(text("SELECT set_config(:name, '0', false)"), {"name": name})
    try:
        yield
    finally:
        if not connection.invalidated:
            for name, value in previous.items():
                connection.execute(
                    text("SELECT set_config(:name, :value, false)"), {"name": name, "value": value}
                )
