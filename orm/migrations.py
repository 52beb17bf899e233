"""Run Alembic from code that already has an event loop, on the caller's own connection.

`alembic/env.py` cannot be imported (Alembic executes it as a script), so the connection
travels to it in `MIGRATION_CONNECTION`, a context variable set only for the duration of
one command: no module global, and the migration runs on the caller's loop without
blocking it (SQLAlchemy's `run_sync` drives the sync Alembic API in a greenlet).
"""

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MIGRATION_CONNECTION: ContextVar[Connection | None] = ContextVar(
    "migration_connection", default=None
)


def alembic_config() -> Config:
    return Config(PROJECT_ROOT / "alembic.ini")


async def upgrade(connection: AsyncConnection, revision: str = "head") -> None:
    """`alembic upgrade <revision>` on `connection`; Alembic commits what it began."""
    await connection.run_sync(_run, command.upgrade, revision)


async def downgrade(connection: AsyncConnection, revision: str) -> None:
    """`alembic downgrade <revision>` on `connection`."""
    await connection.run_sync(_run, command.downgrade, revision)


def _run(connection: Connection, step: Callable[[Config, str], None], revision: str) -> None:
    token = MIGRATION_CONNECTION.set(connection)
    try:
        step(alembic_config(), revision)
    finally:
        MIGRATION_CONNECTION.reset(token)
