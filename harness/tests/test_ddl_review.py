"""The DDL review fails a revision for each statement production would feel, and says
what to write instead; the safe forms, and a finding accepted with its reason, pass."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from pg_harness.migrations.checks import MigrationCheckError, revisions
from pg_harness.migrations.ddl_review import check_ddl, history_sql
from pg_harness.project import project
from revision_on_top import TEST_REVISION, Case, script_directory, sql
from template_example import needs_the_example

pytestmark = needs_the_example


def review(tmp: Path, case: Case) -> str | None:
    """The review of the case's revision: its failure, if any."""
    config = script_directory(tmp, case)
    revision = ScriptDirectory.from_config(config).get_revision(TEST_REVISION)
    assert revision is not None
    try:
        check_ddl(revision, config)
    except MigrationCheckError as error:
        return str(error)
    return None


# `kind`: the rule that must fail the revision; each case also names words of its advice.
DANGEROUS = [
    (
        Case(
            "index",
            'op.create_index("ix_note_title", "note", ["title"])',
            kind="create-index-blocks-writes",
        ),
        ["SHARE on note", "CONCURRENTLY"],
    ),
    (
        Case(
            "type",
            'op.alter_column("note", "user_id", type_=sa.BigInteger())',
            kind="alter-column-type-rewrites",
        ),
        ["ACCESS EXCLUSIVE on note", "fill it in batches"],
    ),
    (
        Case(
            "volatile_default",
            'op.add_column("note", sa.Column("token", sa.Uuid(), '
            'server_default=sa.text("gen_random_uuid()")))',
            kind="add-column-rewrites",
        ),
        ["gen_random_uuid()", "SET DEFAULT"],
    ),
    (
        Case(
            "not_null",
            'op.add_column("note", sa.Column("summary", sa.Text()))\n'
            'op.alter_column("note", "summary", nullable=False)',
            kind="set-not-null-scans",
        ),
        ["scans all of note", "IS NOT NULL) NOT VALID"],
    ),
    (
        Case(
            "check",
            'op.create_check_constraint("ck_note_title", "note", "length(title) > 0")',
            kind="constraint-without-not-valid",
        ),
        ["ACCESS EXCLUSIVE on note", "NOT VALID"],
    ),
    (
        Case(
            "foreign_key",
            'op.add_column("note", sa.Column("editor_id", sa.Integer()))\n'
            'op.create_foreign_key("fk_note_editor", "note", "user_account", ["editor_id"],'
            ' ["id"])',
            kind="constraint-without-not-valid",
        ),
        ["SHARE ROW EXCLUSIVE on note", "VALIDATE"],
    ),
    (
        Case(
            "unique",
            'op.create_unique_constraint("uq_note_title", "note", ["title"])',
            kind="unique-constraint-builds-index",
        ),
        ["CREATE UNIQUE INDEX CONCURRENTLY"],
    ),
    (
        Case("drop_column", 'op.drop_column("note", "body")', kind="breaks-running-release"),
        ["column note.body", "expand and contract"],
    ),
    (
        Case(
            "rename_column",
            'op.alter_column("note", "title", new_column_name="heading")',
            kind="breaks-running-release",
        ),
        ["column note.title", "stop reading"],
    ),
]


@pytest.mark.parametrize(("case", "advice"), DANGEROUS, ids=lambda c: getattr(c, "name", ""))
def test_a_statement_production_would_feel_fails_with_its_lock_and_the_safe_form(
    tmp_path: Path, case: Case, advice: list[str]
) -> None:
    message = review(tmp_path, case)

    assert message is not None, f"the review passed {case.upgrade}"
    assert f"revision {TEST_REVISION} " in message, message
    assert f"[{case.kind}] ALTER TABLE" in message or f"[{case.kind}] CREATE" in message, message
    assert "takes " in message, message
    assert "instead: " in message, message
    for words in advice:
        assert words in message, message


SAFE = [
    Case(
        "index_concurrently",
        "with op.get_context().autocommit_block():\n"
        '    op.create_index("ix_note_title", "note", ["title"], postgresql_concurrently=True)',
    ),
    Case(
        "new_table",
        'op.create_table("tag", sa.Column("id", sa.Integer(), primary_key=True),'
        ' sa.Column("label", sa.String(50), nullable=False))\n'
        'op.create_index("ix_tag_label", "tag", ["label"], unique=True)\n'
        'op.create_check_constraint("ck_tag_label", "tag", "label <> \'\'")',
    ),
    Case(
        "constant_default",
        'op.add_column("note", sa.Column("pinned", sa.Boolean(), server_default=sa.false(),'
        " nullable=False))",
    ),
    Case(
        "validated_check_then_not_null",
        'op.add_column("note", sa.Column("summary", sa.Text()))\n'
        + sql(
            "ALTER TABLE note ADD CONSTRAINT ck_summary CHECK (summary IS NOT NULL) NOT VALID",
            "ALTER TABLE note VALIDATE CONSTRAINT ck_summary",
        )
        + '\nop.alter_column("note", "summary", nullable=False)',
    ),
    Case(
        "stable_default_in_an_expression",
        'op.add_column("note", sa.Column("seen_at", sa.DateTime(), '
        "server_default=sa.text(\"timezone('utc', now())\")))",
    ),
    Case(
        "not_null_check_of_the_same_name_on_another_table",
        'op.add_column("note", sa.Column("summary", sa.Text()))\n'
        'op.add_column("user_account", sa.Column("bio", sa.Text()))\n'
        + sql(
            "ALTER TABLE note ADD CONSTRAINT ck_filled CHECK (summary IS NOT NULL) NOT VALID",
            "ALTER TABLE user_account ADD CONSTRAINT ck_filled CHECK (bio IS NOT NULL) NOT VALID",
            "ALTER TABLE note VALIDATE CONSTRAINT ck_filled",
        )
        + '\nop.alter_column("note", "summary", nullable=False)',
    ),
    Case(
        "accepted_with_its_reason",
        'op.drop_column("note", "body")',
        module='DDL_REVIEW_ACCEPTS = {"breaks-running-release": "release 1.4 stopped reading it"}',
    ),
]


@pytest.mark.parametrize("case", SAFE, ids=lambda case: case.name)
def test_the_safe_forms_pass(tmp_path: Path, case: Case) -> None:
    assert review(tmp_path, case) is None


def test_an_acceptance_no_finding_needs_fails(tmp_path: Path) -> None:
    stale = Case(
        "stale",
        'op.add_column("note", sa.Column("pinned", sa.Boolean()))',
        module='DDL_REVIEW_ACCEPTS = {"create-index-blocks-writes": "note is small"}',
    )
    message = review(tmp_path, stale)
    assert message is not None
    assert "create-index-blocks-writes, which the review no longer finds" in message


@pytest.mark.parametrize(
    ("accepts", "problem"),
    [
        ('{"breaks-running-release": ""}', "accepted without a reason"),
        ('{"drop-everything": "why not"}', "is no rule of the DDL review"),
    ],
    ids=["no-reason", "no-such-rule"],
)
def test_an_acceptance_needs_a_rule_and_a_reason(
    tmp_path: Path, accepts: str, problem: str
) -> None:
    case = Case(
        "accepts", 'op.drop_column("note", "body")', module=f"DDL_REVIEW_ACCEPTS = {accepts}"
    )
    message = review(tmp_path, case)
    assert message is not None
    assert problem in message, message


def test_every_revision_of_the_history_is_reviewed() -> None:
    # The first revision's marker reads "-- Running upgrade  -> <id>": no parent.
    config = project().migrations.alembic_config()
    assert set(history_sql(config)) == {script.revision for script in revisions(config)}
