"""The per-revision migration check the stairway runs, usable on any script directory.

One step of the walk from base to head, for one revision R with parent P:
upgrade to P (a no-op when the walk runs in order) → snapshot → upgrade to R → snapshot →
downgrade to P → snapshot, which must equal the first (the downgrade left no trace) →
upgrade to R again → snapshot, which must equal the second (R can be re-applied).
"""

import io
import sys
import warnings

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

from pg_harness.migrations.catalog import Catalog, differences, snapshot
from pg_harness.project import project


def load_history(config: Config | None = None) -> tuple[ScriptDirectory, list[str]]:
    """The script directory, and the problems Alembic found in its history.

    Alembic only warns about a `down_revision` that points nowhere; collected here so
    test_history reports it once, by name, instead of every test that walks the history.
    """
    failure = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        script = ScriptDirectory.from_config(config or project().migrations.alembic_config())
        try:
            script.get_heads()  # builds the revision map, which is where it warns
        except Exception as error:  # and, for some broken histories, fails after warning
            failure.append(f"Alembic cannot read the history: {type(error).__name__}: {error}")
    return script, [str(warning.message) for warning in caught] + failure


def history_problems(config: Config | None = None) -> list[str]:
    """What stops the history from migrating to one head: missing parents, several heads."""
    script, problems = load_history(config)
    if problems:
        return problems
    heads = script.get_heads()
    if len(heads) > 1:
        problems.append(
            f"{len(heads)} heads; two branches were added in parallel. Merge them with "
            "`alembic merge heads -m 'merge'` (or rebase one onto the other):\n  "
            + "\n  ".join(
                describe(revision)
                for head in heads
                if (revision := script.get_revision(head)) is not None
            )
        )
    return problems


class MigrationCheckError(AssertionError):
    """A revision failed a check; the message names it and says what is wrong."""


def describe(revision: Script) -> str:
    return f"revision {revision.revision} ({revision.doc!r}, {revision.path})"


async def _snapshot(connection: AsyncConnection) -> Catalog:
    catalog = await snapshot(connection)
    # End the read's transaction: Alembic would take an open one for the caller's and
    # leave it uncommitted.
    await connection.rollback()
    return catalog


async def check_revision(
    connection: AsyncConnection, revision: Script, config: Config | None = None
) -> None:
    """Stairway and no-trace checks for one revision; raises MigrationCheckError."""
    previous = revision.down_revision or "base"
    if not isinstance(previous, str):
        raise MigrationCheckError(f"{describe(revision)} merges several revisions")
    await project().migrations.upgrade(connection, previous, config)
    before = await _snapshot(connection)
    await project().migrations.upgrade(connection, revision.revision, config)
    upgraded = await _snapshot(connection)
    await project().migrations.downgrade(connection, previous, config)
    after = await _snapshot(connection)
    if trace := differences(before, after):
        raise MigrationCheckError(
            f"{describe(revision)}: downgrade to {previous} does not undo the upgrade; "
            "what differs from before the upgrade:\n  " + "\n  ".join(trace)
        )
    await project().migrations.upgrade(connection, revision.revision, config)
    if changed := differences(upgraded, await _snapshot(connection)):
        raise MigrationCheckError(
            f"{describe(revision)}: upgrading again after the downgrade gives another "
            "schema:\n  " + "\n  ".join(changed)
        )


# A revision that cannot be written out as SQL ahead of time (it reads rows to decide what
# to do) says so with this module-level constant, giving the reason; the offline check
# skips it, and its upgrade() must then do nothing but say so when context.is_offline_mode().
OFFLINE_MARKER = "OFFLINE_SQL_UNSUPPORTED"


def offline_unsupported_reason(revision: Script) -> str | None:
    reason = getattr(revision.module, OFFLINE_MARKER, None)
    return None if reason is None else str(reason)


def upgrade_sql(config: Config, span: str) -> str:
    """What `alembic upgrade <span> --sql` writes (`span`: `<from>:<to>`)."""
    buffer = io.StringIO()
    offline = Config(config.config_file_name, output_buffer=buffer, stdout=sys.stdout)
    offline.set_main_option("script_location", config.get_main_option("script_location") or "")
    command.upgrade(offline, span, sql=True)
    return buffer.getvalue()


def offline_sql(revision: Script, config: Config | None = None) -> str:
    """What `alembic upgrade <parent>:<revision> --sql` writes for this revision alone."""
    base = config or project().migrations.alembic_config()
    start = revision.down_revision or "base"
    try:
        return upgrade_sql(base, f"{start}:{revision.revision}")
    except Exception as exc:
        raise MigrationCheckError(
            f"{describe(revision)} cannot be written as SQL (`alembic upgrade --sql`): "
            f"{type(exc).__name__}: {exc}. If it must read data, set {OFFLINE_MARKER} = "
            '"<why>" in it (see pg_harness/migrations/checks.py).'
        ) from exc


def revisions(config: Config | None = None) -> list[Script]:
    """Every revision, oldest first; new ones are picked up without editing any test."""
    script, _problems = load_history(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported by history_problems()
        return list(reversed(list(script.walk_revisions())))


def head_revision(config: Config | None = None) -> Script:
    script, _problems = load_history(config)
    head = script.get_current_head()
    revision = None if head is None else script.get_revision(head)
    assert revision is not None, "the project has no revisions"
    return revision


def check_offline(revision: Script, config: Config | None = None) -> str:
    """The revision's offline SQL, checked to hold statements of its own and its version
    bookkeeping; raises MigrationCheckError otherwise."""
    sql = offline_sql(revision, config)
    bookkeeping = (
        f"UPDATE alembic_version SET version_num='{revision.revision}'",
        f"INSERT INTO alembic_version (version_num) VALUES ('{revision.revision}')",
    )
    if not any(line in sql for line in bookkeeping):
        raise MigrationCheckError(f"{describe(revision)}: its SQL does not record its version")
    # The bookkeeping takes three statements; the revision's own come before them.
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    if len(statements) <= 3:
        raise MigrationCheckError(f"{describe(revision)} wrote no statement of its own:\n{sql}")
    return sql
