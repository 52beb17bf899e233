"""The development server of `make run`: kept data, one server shared by every command.

Its data lives in `.pgdata/` in the project, so it survives restarts. When root runs it
and its account cannot enter the project directory, the data lives in
/var/tmp/embedded-postgres-data/<project>-<hash of its path> instead. EMBEDDED_PGDATA, if
set, names another place (the tests use it to stay away from yours).
"""

import asyncio
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pg_harness.embedded.account import refuse_unless_ours, server_account
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.project import project
from pg_harness.urls import with_database

DATABASE = "app"


def kept_data_dir(name: str, override: str) -> Path:
    """`<project>/<name>`, or its stand-in under /var/tmp, or what `$override` names."""
    if chosen := os.environ.get(override):
        return Path(chosen).resolve()
    root = project().root
    if server_account().can_reach(root):
        return root / name
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return Path("/var/tmp/embedded-postgres-data") / f"{root.name}-{digest}{name}"


def own_parent(path: Path) -> None:
    """Create the folder `path` goes in, and refuse one that another account planted."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    refuse_unless_ours(path.parent, "EMBEDDED_PGDATA / TEST_PGDATA")


def dev_data_dir() -> Path:
    return kept_data_dir(".pgdata", "EMBEDDED_PGDATA")


@contextmanager
def dev_database() -> Iterator[URL]:
    """Yield the URL of the `app` database, starting the server unless one already runs.

    A server this call started is stopped when it returns; one that was already running
    (another `make run`, say) is left to its owner.
    """
    server = EmbeddedPostgres(dev_data_dir())
    lock_path = server.data_dir.with_name(f"{server.data_dir.name}.lock")
    own_parent(lock_path)
    with lock_path.open("w") as lock:
        # Two commands starting at once must not both initdb or start the server.
        fcntl.flock(lock, fcntl.LOCK_EX)
        port = server.running_port()
        admin_url = server.start() if port is None else server.url(port)
        asyncio.run(_create_database(admin_url, DATABASE))
    try:
        yield with_database(admin_url, DATABASE)
    finally:
        server.stop()


async def _create_database(admin_url: URL, name: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
