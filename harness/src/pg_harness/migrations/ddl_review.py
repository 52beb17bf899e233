"""The DDL review: statements that are right and still take production down, per revision.

It reads what `alembic upgrade --sql` writes for the whole history, with PostgreSQL's own
parser (libpg_query, through pglast), and walks it oldest first, so that it knows which
tables each revision found already there (a table created in the same revision is empty:
nothing it does to that table blocks anyone) and which NOT NULL checks an earlier
statement validated. For each statement that takes a lock production would feel, or
breaks the release still running during a rolling deploy, a `Finding` says the lock, why
it hurts, and what to write instead.

A revision accepts a finding in its own file, with its reason, never globally:

    DDL_REVIEW_ACCEPTS = {"create-index-blocks-writes": "tag has at most 20 rows"}

An acceptance for a rule that finds nothing in that revision is itself reported, so that
none outlives the statement it was written for.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import Script
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.visitors import Visitor

from pg_harness.migrations.checks import (
    MigrationCheckError,
    describe,
    revisions,
    upgrade_sql,
)
from pg_harness.project import project

ACCEPTS = "DDL_REVIEW_ACCEPTS"

# Functions whose value differs per row: a column default calling one is computed for every
# existing row, rewriting the table. A default without one is evaluated once and stored in
# the catalog (PostgreSQL 11 and later).
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
    }
)
# Column types that come with a sequence: each existing row draws a value.
_SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})


@dataclass(frozen=True)
class Rule:
    name: str
    lock: str
    why: str
    instead: str


CREATE_INDEX = Rule(
    "create-index-blocks-writes",
    "SHARE on {table}",
    "blocks every INSERT, UPDATE and DELETE on {table} until the index is built",
    "build it CONCURRENTLY, outside the migration's transaction and without its statement "
    "timeout, after dropping what a build that failed left behind (an INVALID index, which "
    "IF NOT EXISTS would keep): `with op.get_context().autocommit_block():` then, on "
    '`bind = op.get_bind()`, `if bind.scalar(text("SELECT NOT indisvalid FROM pg_index '
    "WHERE indexrelid = to_regclass('ix_name')\")): op.drop_index('ix_name', "
    "table_name=..., postgresql_concurrently=True)`, then `with without_timeouts(bind):` "
    "(pg_runtime.migrations.long) `op.create_index('ix_name', ..., "
    "postgresql_concurrently=True, if_not_exists=True)`; in offline mode "
    "(`op.get_context().as_sql`) only the create_index",
)
ALTER_TYPE = Rule(
    "alter-column-type-rewrites",
    "ACCESS EXCLUSIVE on {table}",
    "rewrites {table} and rebuilds its indexes while no query can read or write it "
    "(only a change the server can skip, such as a longer varchar or varchar to text, "
    "does not rewrite: accept it with that reason)",
    "add a column of the new type, fill it in batches, switch the code over, then drop the "
    "old column in a later release",
)
VOLATILE_DEFAULT = Rule(
    "add-column-rewrites",
    "ACCESS EXCLUSIVE on {table}",
    "{default} is computed for every existing row: {table} is rewritten while no query "
    "can read or write it",
    "add the column without that default (or with a constant one), set the default for new "
    "rows with ALTER COLUMN ... SET DEFAULT (or attach the sequence), and fill the existing "
    "rows in batches",
)
SET_NOT_NULL = Rule(
    "set-not-null-scans",
    "ACCESS EXCLUSIVE on {table}",
    "scans all of {table} to check {column}, while no query can read or write it",
    "first `ADD CONSTRAINT ... CHECK ({column} IS NOT NULL) NOT VALID`, then `VALIDATE "
    "CONSTRAINT` (which lets writes through), then SET NOT NULL, which uses the validated "
    "check and skips the scan; VALIDATE in a transaction of its own (inside "
    "`op.get_context().autocommit_block()`), so the ADD's brief lock is not held during "
    "its scan",
)
CONSTRAINT_SCAN = Rule(
    "constraint-without-not-valid",
    "{lock}",
    "checks every row of {table} under a lock that blocks its writes",
    "add it `NOT VALID` (it holds for new rows at once), then `VALIDATE CONSTRAINT` in a "
    "later statement, which checks the old rows without blocking writes",
)
UNIQUE_CONSTRAINT = Rule(
    "unique-constraint-builds-index",
    "ACCESS EXCLUSIVE on {table}",
    "builds its unique index while no query can read or write {table}",
    "`CREATE UNIQUE INDEX CONCURRENTLY` first (in an autocommit block), then `ADD "
    "CONSTRAINT ... UNIQUE USING INDEX`, which only attaches it",
)
BREAKS_RUNNING_RELEASE = Rule(
    "breaks-running-release",
    "ACCESS EXCLUSIVE on {table}",
    "the release still running during a rolling deploy reads {what}: each of its "
    "instances fails until it is replaced",
    "expand and contract: stop reading {what} in one release, and drop or rename it in a "
    "later one (accept the finding here, naming the release that stopped reading it)",
)
RULES = (
    CREATE_INDEX,
    ALTER_TYPE,
    VOLATILE_DEFAULT,
    SET_NOT_NULL,
    CONSTRAINT_SCAN,
    UNIQUE_CONSTRAINT,
    BREAKS_RUNNING_RELEASE,
)


@dataclass(frozen=True)
class Finding:
    rule: str
    statement: str
    lock: str
    why: str
    instead: str

    def __str__(self) -> str:
        return (
            f"[{self.rule}] {self.statement}\n"
            f"    takes {self.lock}: {self.why}\n"
            f"    instead: {self.instead}"
        )


def finding(rule: Rule, statement: str, **details: str) -> Finding:
    return Finding(
        rule.name,
        statement,
        rule.lock.format(**details),
        rule.why.format(**details),
        rule.instead.format(**details),
    )


@dataclass
class _Schema:
    """What the walk knows of the schema: the NOT NULL checks validated so far."""

    # (table, constraint name) -> column, of a CHECK (column IS NOT NULL)
    not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    validated: set[tuple[str, str]] = field(default_factory=set)


# pglast types a node's fields as unions of every kind of node: the walk reads them as Any,
# having checked the node's own kind.


def _table(relation: Any) -> str:
    """The table's name as written, schema included if given (`public.note` is not `note`)."""
    return (
        f"{relation.schemaname}.{relation.relname}"
        if relation.schemaname
        else str(relation.relname)
    )


def _not_null_column(constraint: Any) -> str | None:
    """The column of a `CHECK (column IS NOT NULL)`, else None."""
    expr: Any = constraint.raw_expr
    if not isinstance(expr, ast.NullTest) or expr.nulltesttype != 1:  # IS_NOT_NULL
        return None
    column: Any = expr.arg
    if isinstance(column, ast.ColumnRef) and column.fields and len(column.fields) == 1:
        name: Any = column.fields[0]
        return str(name.sval)
    return None


def _function_names(node: Any) -> Iterator[str]:
    """The names of the functions `node` calls, however deep."""

    class Calls(Visitor):
        def __init__(self) -> None:
            self.names: list[str] = []

        def visit_FuncCall(self, ancestors: object, call: Any) -> None:  # noqa: N802
            self.names.append(str(call.funcname[-1].sval))

    calls = Calls()
    calls(node)
    yield from calls.names


def _default_problem(column: Any) -> str | None:
    """Why adding `column` rewrites the table, if it does."""
    type_name = str(column.typeName.names[-1].sval) if column.typeName else ""
    if type_name in _SERIAL_TYPES:
        return f"a {type_name} column's sequence"
    for constraint in column.constraints or ():
        if constraint.contype == ConstrType.CONSTR_GENERATED:
            return "a stored generated column"
        if constraint.contype == ConstrType.CONSTR_IDENTITY:
            return "an identity column's sequence"
        if constraint.contype == ConstrType.CONSTR_DEFAULT:
            volatile = [
                name for name in _function_names(constraint.raw_expr) if name in VOLATILE_FUNCTIONS
            ]
            if volatile:
                return f"{volatile[0]}()"
    return None


def review_sql(sql: str, schema: _Schema | None = None) -> list[Finding]:
    """The findings in one revision's SQL; `schema` carries what earlier revisions did."""
    schema = schema if schema is not None else _Schema()
    created: set[str] = set()  # tables this revision created: empty, nobody waits on them
    findings = []
    for raw in parse_sql(sql):
        start: int = raw.stmt_location or 0
        statement = (sql[start : start + raw.stmt_len] if raw.stmt_len else sql[start:]).strip()
        if "alembic_version" in statement:
            continue  # Alembic's bookkeeping
        node: Any = raw.stmt
        if isinstance(node, ast.CreateStmt):
            created.add(_table(node.relation))
        elif isinstance(node, ast.IndexStmt):
            if not node.concurrent and _table(node.relation) not in created:
                findings.append(finding(CREATE_INDEX, statement, table=_table(node.relation)))
        elif isinstance(node, ast.AlterTableStmt):
            table = _table(node.relation)
            for command_ in node.cmds or ():
                findings.extend(_alter_table(command_, table, statement, table in created, schema))
        elif isinstance(node, ast.RenameStmt) and node.relation is not None:
            table = _table(node.relation)
            if table in created:
                continue
            if node.renameType == ObjectType.OBJECT_COLUMN:
                what = f"column {table}.{node.subname}"
            elif node.renameType == ObjectType.OBJECT_TABLE:
                what = f"table {table}"
            else:
                continue
            findings.append(finding(BREAKS_RUNNING_RELEASE, statement, table=table, what=what))
        elif isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
            for names in node.objects or ():
                table = str(names[-1].sval)
                if table not in created:
                    findings.append(
                        finding(
                            BREAKS_RUNNING_RELEASE, statement, table=table, what=f"table {table}"
                        )
                    )
    return findings


def _alter_table(
    cmd: Any, table: str, statement: str, is_new: bool, schema: _Schema
) -> Iterator[Finding]:
    kind = cmd.subtype
    if kind == AlterTableType.AT_AddConstraint:
        constraint = cmd.def_
        column = (
            _not_null_column(constraint) if constraint.contype == ConstrType.CONSTR_CHECK else None
        )
        if column and constraint.conname:
            schema.not_null_checks[table, str(constraint.conname)] = column
            if not constraint.skip_validation:
                schema.validated.add((table, column))
        if is_new:
            return
        if constraint.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK):
            if not constraint.skip_validation:
                lock = (
                    f"SHARE ROW EXCLUSIVE on {table} and the table it refers to"
                    if constraint.contype == ConstrType.CONSTR_FOREIGN
                    else f"ACCESS EXCLUSIVE on {table}"
                )
                yield finding(CONSTRAINT_SCAN, statement, table=table, lock=lock)
        elif (
            constraint.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY)
            and not constraint.indexname  # USING INDEX only attaches one already built
        ):
            yield finding(UNIQUE_CONSTRAINT, statement, table=table)
    elif kind == AlterTableType.AT_ValidateConstraint:
        if (checked := schema.not_null_checks.get((table, str(cmd.name)))) is not None:
            schema.validated.add((table, checked))
    elif kind == AlterTableType.AT_DropConstraint:
        if (checked := schema.not_null_checks.pop((table, str(cmd.name)), None)) is not None:
            schema.validated.discard((table, checked))
    elif is_new:
        return
    elif kind == AlterTableType.AT_AlterColumnType:
        yield finding(ALTER_TYPE, statement, table=table)
    elif kind == AlterTableType.AT_AddColumn:
        if (problem := _default_problem(cmd.def_)) is not None:
            yield finding(VOLATILE_DEFAULT, statement, table=table, default=problem)
    elif kind == AlterTableType.AT_SetNotNull:
        if (table, str(cmd.name)) not in schema.validated:
            yield finding(SET_NOT_NULL, statement, table=table, column=str(cmd.name))
    elif kind == AlterTableType.AT_DropColumn:
        what = f"column {table}.{cmd.name}"
        yield finding(BREAKS_RUNNING_RELEASE, statement, table=table, what=what)


# Alembic writes this line before each revision's statements in `upgrade --sql`.
# Its forms: "-- Running upgrade  -> a" (a root), "b -> c", and "a, b -> c" (a merge).
_RUNNING = re.compile(r"^-- Running upgrade .*?-> (\S+)$", re.M)


def history_sql(config: Config) -> dict[str, str]:
    """Each revision's SQL, from one `alembic upgrade base:heads --sql`."""
    text = upgrade_sql(config, "base:heads")
    marks = list(_RUNNING.finditer(text))
    return {
        mark[1]: text[mark.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, mark in enumerate(marks)
    }


def _revision_files(script_location: str) -> tuple[tuple[str, int], ...]:
    """What the review of a history depends on: its revision files and when they changed."""
    return tuple(
        sorted((path.name, path.stat().st_mtime_ns) for path in Path(script_location).rglob("*.py"))
    )


@cache
def _review_history(
    config_file: str | None, script_location: str, files: tuple[tuple[str, int], ...]
) -> dict[str, list[Finding]]:
    """Every revision's findings; cached per state of the revision files (`files`)."""
    config = Config(config_file)
    config.set_main_option("script_location", script_location)
    by_revision = history_sql(config)
    schema = _Schema()
    return {
        revision.revision: review_sql(by_revision.get(revision.revision, ""), schema)
        for revision in revisions(config)
    }


def accepted(revision: Script) -> dict[str, str]:
    """The findings `revision` accepts, by rule, with their reasons."""
    accepts = getattr(revision.module, ACCEPTS, {})
    rules = {rule.name for rule in RULES}
    problems = [
        f"{name!r} is no rule of the DDL review (its rules: {', '.join(sorted(rules))})"
        for name in accepts
        if name not in rules
    ] + [
        f"{name!r} is accepted without a reason"
        for name, why in accepts.items()
        if not str(why).strip()
    ]
    if problems:
        raise MigrationCheckError(f"{describe(revision)}, {ACCEPTS}: " + "; ".join(problems))
    return {str(name): str(why) for name, why in accepts.items()}


def check_ddl(revision: Script, config: Config | None = None) -> None:
    """Raises MigrationCheckError for the revision's findings it does not accept, and for
    acceptances that no finding needs."""
    base = config or project().migrations.alembic_config()
    location = base.get_main_option("script_location") or ""
    findings = _review_history(base.config_file_name, location, _revision_files(location))[
        revision.revision
    ]
    accepts = accepted(revision)
    refused = [found for found in findings if found.rule not in accepts]
    unused = sorted(set(accepts) - {found.rule for found in findings})
    if refused:
        raise MigrationCheckError(
            f"{describe(revision)}: {len(refused)} statement(s) production would feel:\n"
            + "\n".join(str(found) for found in refused)
            + f"\nIf one is safe here (a small or new table), accept it in the revision: "
            f'{ACCEPTS} = {{"{refused[0].rule}": "<why it is safe>"}}'
        )
    if unused:
        raise MigrationCheckError(
            f"{describe(revision)}: {ACCEPTS} accepts {', '.join(unused)}, which the review "
            "no longer finds: remove it"
        )
