"""`make reset-db`: empty the development database of `make run`, migration stamp and all.

For a history that changed under it (the example's revisions removed, a revision
rewritten before it was shared): the next `make migrate` or `make run` builds it anew.
Only the embedded server's `app` database: with DATABASE_URL set, the database is yours
and this leaves it alone, saying so.
"""

import asyncio
import sys

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pg_harness.embedded.dev import DATABASE, dev_database
from pg_harness.project import project


async def _recreate(app_url: URL) -> None:
    admin = create_async_engine(
        app_url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as connection:
            # FORCE: a `make run` still connected loses its sessions, as it would a restart.
            await connection.execute(text(f'DROP DATABASE "{DATABASE}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        await admin.dispose()


def main() -> None:
    try:
        configured = project().configured_database_url() is not None
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    if configured:
        # Not an error: a script (README, "Make it yours") runs it whichever server is in use.
        print(
            "DATABASE_URL is set: the embedded development database is not in use, and the "
            "database DATABASE_URL names is left as it is (`make reset-db` never empties it)"
        )
        return
    with dev_database() as url:
        asyncio.run(_recreate(url))
    print(f"the development database {DATABASE!r} is empty: `make migrate` or `make run` next")


if __name__ == "__main__":
    main()
