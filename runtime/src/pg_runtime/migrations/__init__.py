"""Run Alembic from code that already has an event loop, on the caller's own connection.

`alembic/env.py` cannot be imported (Alembic executes it as a script), so the connection
travels to it in `MIGRATION_CALL`, a context variable set only for the duration of
one command: no module global, and the migration runs on the caller's loop without
blocking it (SQLAlchemy's `run_sync` drives the sync Alembic API in a greenlet).

Every online run, from here or from the `alembic` command, holds pg_runtime.migrations.lock.
"""

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pg_runtime.migrations.engine import create_migration_engine
from pg_runtime.settings import RuntimeSettings

DEFAULT_LOCK_TIMEOUT: float = RuntimeSettings.model_fields["migration_lock_timeout"].default


@dataclass(frozen=True)
class MigrationCall:
    """What code that runs a migration hands to env.py."""

    connection: Connection
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    # Seconds to wait for another instance's migrations; None: as long as they take.
    wait_timeout: float | None = None


MIGRATION_CALL: ContextVar[MigrationCall | None] = ContextVar("migration_call", default=None)


class Migrations:
    """A project's migrations: its `alembic.ini`, and the differences between models and
    schema that autogenerate reports but that are not real (`known_false_positives`, as
    (kind, name) pairs such as ("index", "ix_note_title_trgm"); `alembic check`,
    autogenerate and the drift test all skip them)."""

    def __init__(
        self, ini: Path, known_false_positives: frozenset[tuple[str, str]] = frozenset()
    ) -> None:
        self.ini = ini
        self.known_false_positives = known_false_positives
        # How models and schema are compared, the same for the CLI and the tests.
        self.comparison_options: dict[str, Any] = {
            "compare_type": True,
            # Server defaults drift silently otherwise.
            "compare_server_default": True,
            "include_object": self._include_object,
        }

    def _include_object(
        self, obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
    ) -> bool:
        return (kind, name) not in self.known_false_positives

    def config(self) -> Config:
        """A new Config of the project's alembic.ini."""
        return Config(self.ini)

    @cached_property
    def _config(self) -> Config:
        # The default for upgrade() and downgrade(): one Config, so revisions are read once.
        return self.config()

    async def upgrade(
        self,
        connection: AsyncConnection,
        revision: str = "head",
        config: Config | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        wait_timeout: float | None = None,
    ) -> None:
        """`alembic upgrade <revision>` on `connection`; Alembic commits what it began.

        `config` defaults to the project's alembic.ini; the tests pass another to run a copy.
        """
        _refuse_open_transaction(connection)
        config = config or self._config
        await connection.run_sync(_run, _upgrade, revision, config, lock_timeout, wait_timeout)

    async def downgrade(
        self,
        connection: AsyncConnection,
        revision: str,
        config: Config | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        """`alembic downgrade <revision>` on `connection`."""
        _refuse_open_transaction(connection)
        await connection.run_sync(_run, _downgrade, revision, config or self._config, lock_timeout)

    async def upgrade_database(self, settings: RuntimeSettings) -> None:
        """`alembic upgrade head` on the server of DIRECT_URL (or DATABASE_URL), from code."""
        engine = create_migration_engine(settings)
        try:
            async with engine.connect() as connection:
                await self.upgrade(
                    connection,
                    lock_timeout=settings.migration_lock_timeout,
                    wait_timeout=settings.migration_wait_timeout or None,
                )
        finally:
            await engine.dispose()

    def code_head(self) -> str | None:
        """The head revision of this code's migrations (None: it has none yet)."""
        return _script_directory(self._config).get_current_head()

    def is_schema_ready(self, heads: tuple[str, ...]) -> bool:
        """Whether a database at `heads` has everything this code's head revision created.

        A revision this code does not know is taken for a newer one that a later release
        has applied (a rolling deploy with expand/contract migrations): the database is
        ahead. One it knows other than its head is older: the database is behind.
        """
        head = self.code_head()
        if head is None:  # no revision yet: every database has what this code needs
            return True
        return head in heads or any(revision not in self._known_revisions for revision in heads)

    @cached_property
    def _known_revisions(self) -> frozenset[str]:
        # The revision files do not change while the process runs; the probe asks often.
        script = _script_directory(self._config)
        return frozenset(revision.revision for revision in script.walk_revisions())


def _refuse_open_transaction(connection: AsyncConnection) -> None:
    # Alembic would run inside it and never commit, and a revision that needs to run
    # outside a transaction (autocommit_block, for CREATE INDEX CONCURRENTLY) would fail.
    if connection.in_transaction():
        raise RuntimeError(
            "migrations need a connection with no transaction open: commit or roll back first"
        )


def _run(
    connection: Connection,
    step: Callable[[Config, str], None],
    revision: str,
    config: Config,
    lock_timeout: float,
    wait_timeout: float | None = None,
) -> None:
    token = MIGRATION_CALL.set(MigrationCall(connection, lock_timeout, wait_timeout))
    try:
        step(config, revision)
    finally:
        MIGRATION_CALL.reset(token)


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


async def database_heads(connection: AsyncConnection) -> tuple[str, ...]:
    """The revisions the database is at (none before its first migration)."""
    # Plain SQL rather than Alembic's MigrationContext, which logs two lines per call:
    # the readiness probe asks every few seconds.
    if await connection.scalar(text("SELECT to_regclass('alembic_version')")) is None:
        return ()
    return tuple(await connection.scalars(text("SELECT version_num FROM alembic_version")))
