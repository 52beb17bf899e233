"""Run Alembic from code that already has an event loop, on the caller's own connection.

`alembic/env.py` cannot be imported (Alembic executes it as a script), so the connection
travels to it in `MIGRATION_CONNECTION`, a context variable set only for the duration of
one command: no module global, and the migration runs on the caller's loop without
blocking it (SQLAlchemy's `run_sync` drives the sync Alembic API in a greenlet).
"""

from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MIGRATION_CONNECTION: ContextVar[Connection | None] = ContextVar(
    "migration_connection", default=None
)


# Differences between the models and the migrated schema that autogenerate reports but
# that are not real (a type it cannot compare, an object managed outside the models...):
# list them here, as (kind, name) pairs such as ("index", "ix_note_title_trgm"), and
# `alembic check`, `alembic revision --autogenerate` and the drift test all skip them.
KNOWN_FALSE_POSITIVES: frozenset[tuple[str, str]] = frozenset()


def include_object(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    return (kind, name) not in KNOWN_FALSE_POSITIVES


# How models and schema are compared, the same for the CLI and the tests.
COMPARISON_OPTIONS: dict[str, object] = {
    "compare_type": True,
    # Server defaults drift silently otherwise.
    "compare_server_default": True,
    "include_object": include_object,
}


def alembic_config() -> Config:
    return Config(PROJECT_ROOT / "alembic.ini")


# The default for upgrade() and downgrade(): one Config, so its revisions are read once.
_project_config = cache(alembic_config)


async def upgrade(
    connection: AsyncConnection, revision: str = "head", config: Config | None = None
) -> None:
    """`alembic upgrade <revision>` on `connection`; Alembic commits what it began.

    `config` defaults to the project's alembic.ini; the tests pass another to run a copy.
    """
    _refuse_open_transaction(connection)
    await connection.run_sync(_run, _upgrade, revision, config or _project_config())


async def downgrade(
    connection: AsyncConnection, revision: str, config: Config | None = None
) -> None:
    """`alembic downgrade <revision>` on `connection`."""
    _refuse_open_transaction(connection)
    await connection.run_sync(_run, _downgrade, revision, config or _project_config())


def _refuse_open_transaction(connection: AsyncConnection) -> None:
    # Alembic would run inside it and never commit, and a revision that needs to run
    # outside a transaction (autocommit_block, for CREATE INDEX CONCURRENTLY) would fail.
    if connection.in_transaction():
        raise RuntimeError(
            "migrations need a connection with no transaction open: commit or roll back first"
        )


def _run(
    connection: Connection, step: Callable[[Config, str], None], revision: str, config: Config
) -> None:
    token = MIGRATION_CONNECTION.set(connection)
    try:
        step(config, revision)
    finally:
        MIGRATION_CONNECTION.reset(token)


# alembic.command.upgrade and .downgrade, less one thing: they read every revision file
# again on each call, which made a walk over N revisions (4 commands each) cost N². Here
# the files are read once per Config (kept in its `attributes`, which Alembic leaves to
# its callers), so the stairway's cost grows linearly; bench/migrations.py measures it.
def _script_directory(config: Config) -> ScriptDirectory:
    script = config.attributes.get("script_directory")
    if not isinstance(script, ScriptDirectory):
        script = config.attributes["script_directory"] = ScriptDirectory.from_config(config)
    return script


def _upgrade(config: Config, revision: str) -> None:
    script = _script_directory(config)
    with EnvironmentContext(
        config,
        script,
        fn=lambda current, _context: script._upgrade_revs(revision, current),
        destination_rev=revision,
    ):
        script.run_env()


def _downgrade(config: Config, revision: str) -> None:
    script = _script_directory(config)
    with EnvironmentContext(
        config,
        script,
        fn=lambda current, _context: script._downgrade_revs(revision, current),
        destination_rev=revision,
    ):
        script.run_env()
