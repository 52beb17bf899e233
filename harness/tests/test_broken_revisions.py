"""The migration check catches a downgrade that forgets any kind of schema object.

Each case copies the project's revisions into a temporary script directory, adds one
revision on top of the head whose downgrade leaves something behind, migrates an empty
database of its own to the head and runs check_revision on that revision: it must fail,
and its message must name it and the kind of object, as catalog.KINDS spells it.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from pg_harness.migrations.catalog import KINDS
from pg_harness.migrations.checks import MigrationCheckError, check_revision
from pg_harness.project import project
from pg_harness.server import RunDatabases
from revision_on_top import TEST_REVISION, Case, script_directory, sql
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from template_example import needs_the_example

pytestmark = needs_the_example


FORGOTTEN = [
    Case(
        "table",
        'op.create_table("forgotten", sa.Column("id", sa.Integer(), primary_key=True))',
        kind="table",
    ),
    Case(
        "column",
        'op.add_column("note", sa.Column("pinned", sa.Boolean(), server_default=sa.false(), '
        "nullable=False))",
        kind="column",
    ),
    Case(
        "column_type",
        'op.alter_column("note", "title", type_=sa.String(300), existing_type=sa.String(200))',
        kind="column",
    ),
    Case(
        "column_default", sql("ALTER TABLE note ALTER title SET DEFAULT 'untitled'"), kind="column"
    ),
    Case(
        "column_nullability",
        'op.alter_column("note", "body", nullable=True, existing_type=sa.Text())',
        kind="column",
    ),
    Case("column_identity", sql("ALTER TABLE note ALTER id SET INCREMENT BY 10"), kind="column"),
    Case(
        "column_collation",
        sql('ALTER TABLE note ALTER title TYPE varchar(200) COLLATE "C"'),
        kind="column",
    ),
    Case("index", 'op.create_index("ix_note_title", "note", ["title"])', kind="index"),
    Case(
        "check_constraint",
        sql("ALTER TABLE note ADD CONSTRAINT ck_note_title_not_blank CHECK (title <> '')"),
        kind="constraint",
    ),
    Case(
        "unique_constraint",
        'op.create_unique_constraint("uq_note_user_id_title", "note", ["user_id", "title"])',
        kind="constraint",
    ),
    Case("sequence", sql("CREATE SEQUENCE invoice_number_seq START 1000"), kind="sequence"),
    Case(
        "function",
        sql(
            "CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql "
            "AS 'SELECT count(*) FROM note'"
        ),
        kind="function",
    ),
    Case(
        "procedure",
        sql("CREATE PROCEDURE purge_notes() LANGUAGE sql AS 'DELETE FROM note'"),
        kind="procedure",
    ),
    Case(
        "aggregate",
        sql("CREATE AGGREGATE total(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0')"),
        kind="aggregate",
    ),
    # The classic: drop_table does not drop the enum type that create_table made.
    Case(
        "enum_type",
        'op.create_table("invoice", sa.Column("id", sa.Integer(), primary_key=True), '
        'sa.Column("state", sa.Enum("draft", "sent", name="invoice_state")))',
        downgrade='op.drop_table("invoice")',
        kind="enum type",
    ),
    Case(
        "domain",
        sql("CREATE DOMAIN email_address AS varchar(320) CHECK (VALUE LIKE '%@%')"),
        kind="domain",
    ),
    Case(
        "composite_type",
        sql("CREATE TYPE note_summary AS (title text, words integer)"),
        kind="composite type",
    ),
    Case(
        "range_type", sql("CREATE TYPE price_range AS RANGE (subtype = numeric)"), kind="range type"
    ),
    Case("view", sql("CREATE VIEW note_title AS SELECT id, title FROM note"), kind="view"),
    Case(
        "materialized_view",
        sql("CREATE MATERIALIZED VIEW note_total AS SELECT user_id, count(*) FROM note GROUP BY 1"),
        kind="materialized view",
    ),
    Case(
        "trigger",
        sql(
            "CREATE TRIGGER note_skip_unchanged BEFORE UPDATE ON note FOR EACH ROW "
            "EXECUTE FUNCTION suppress_redundant_updates_trigger()"
        ),
        kind="trigger",
    ),
    Case("rule", sql("CREATE RULE note_keep AS ON DELETE TO note DO INSTEAD NOTHING"), kind="rule"),
    # Row-level security is turned off again; the policy stays.
    Case(
        "policy",
        sql(
            "ALTER TABLE note ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY note_of_user_1 ON note USING (user_id = 1)",
        ),
        downgrade=sql("ALTER TABLE note DISABLE ROW LEVEL SECURITY"),
        kind="policy",
    ),
    Case(
        "statistics_object",
        sql("CREATE STATISTICS st_note_user_id_title ON user_id, title FROM note"),
        kind="statistics object",
    ),
    Case("comment", sql("COMMENT ON COLUMN note.title IS 'shown in lists'"), kind="comment"),
    Case("privileges", sql("GRANT SELECT ON note TO PUBLIC"), kind="privileges"),
    Case("schema", sql("CREATE SCHEMA audit"), kind="schema"),
    Case("extension", sql("CREATE EXTENSION citext"), kind="extension", extension="citext"),
]

CORRECT = Case(
    "correct",
    """\
op.create_table(
    "invoice",
    sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
    sa.Column("state", sa.Enum("draft", "sent", name="invoice_state"), nullable=False),
)
op.execute(
    "CREATE FUNCTION invoice_count() RETURNS bigint LANGUAGE sql "
    "AS 'SELECT count(*) FROM invoice'"
)
# A sequence's position is data, not schema: moving it must not fail the check.
op.execute("SELECT nextval(pg_get_serial_sequence('note', 'id'))")
""",
    downgrade="""\
op.execute("DROP FUNCTION invoice_count()")
op.drop_table("invoice")
sa.Enum(name="invoice_state").drop(op.get_bind())
""",
)


@pytest.fixture
def case() -> Case:
    """The correct revision; the tests of broken ones parametrize `case` instead."""
    return CORRECT


@pytest.fixture
async def case_database(
    case: Case, run_databases: RunDatabases, worker_name: str
) -> AsyncIterator[URL]:
    """An empty database of the case's own: a failed check leaves it anywhere in the walk."""
    async with run_databases.database(f"{worker_name}_broken_{case.name}", migrated=False) as url:
        yield url


async def check_the_test_revision(connection: AsyncConnection, config: Config) -> str | None:
    """Migrate to the project's head, then check the case's revision: its failure, if any.

    The project's own revisions are the stairway's business: a fault there fails it, not
    every case here.
    """
    script = ScriptDirectory.from_config(config)
    test_revision = script.get_revision(TEST_REVISION)
    assert test_revision is not None
    await project().migrations.upgrade(connection, str(test_revision.down_revision), config)
    try:
        await check_revision(connection, test_revision, config)
    except MigrationCheckError as error:
        return str(error)
    return None


async def walk(database: URL, config: Config, extension: str | None) -> str | None:
    engine = create_async_engine(database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            if extension is not None and not await connection.scalar(
                text("SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = :name)"),
                {"name": extension},
            ):
                pytest.skip(f"extension {extension} is not installed on this server")
            await connection.rollback()
            return await check_the_test_revision(connection, config)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("case", FORGOTTEN, ids=lambda case: case.name)
async def test_a_downgrade_that_forgets_an_object_fails_the_check(
    case: Case, case_database: URL, tmp_path: Path
) -> None:
    assert case.kind in KINDS
    message = await walk(case_database, script_directory(tmp_path, case), case.extension)

    assert message is not None, f"the check passed a downgrade that forgets a {case.kind}"
    assert f"revision {TEST_REVISION} " in message
    # One line per object, each starting with its kind.
    assert f"\n  {case.kind} " in message, message


async def test_a_downgrade_that_undoes_everything_passes(
    case: Case, case_database: URL, tmp_path: Path
) -> None:
    assert await walk(case_database, script_directory(tmp_path, case), case.extension) is None
