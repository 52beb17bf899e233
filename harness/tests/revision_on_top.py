"""One revision of a test's own on top of the project's history, in a script directory of
its own: the broken-revision and DDL-review self-tests write their cases this way."""

import shutil
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent

from alembic.config import Config
from alembic.script import ScriptDirectory
from pg_harness.project import project

TEST_REVISION = "7e57c0de0001"


@dataclass(frozen=True)
class Case:
    """The test revision's upgrade and downgrade, as Python with `op` and `sa` in scope."""

    name: str
    upgrade: str
    downgrade: str = "pass"
    # The kind the check must report; None for a revision that must pass.
    kind: str | None = None
    # An extension the case needs from the server, skipped if it is not installed.
    extension: str | None = None
    # Module-level code of the revision (DDL_REVIEW_ACCEPTS, say).
    module: str = ""


def sql(*statements: str) -> str:
    return "\n".join(f"op.execute({statement!r})" for statement in statements)


def script_directory(tmp: Path, case: Case) -> Config:
    """The project's revisions and env.py, plus the case's revision on top of the head."""
    head = ScriptDirectory.from_config(project().migrations.alembic_config()).get_current_head()
    versions = tmp / "alembic" / "versions"
    versions.mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(project().root / "alembic" / name, tmp / "alembic" / name)
    for revision in (project().root / "alembic" / "versions").glob("*.py"):
        shutil.copy(revision, versions / revision.name)
    (versions / f"{TEST_REVISION}_{case.name}.py").write_text(
        f'''"""test revision: {case.name}"""

import sqlalchemy as sa
from alembic import op

revision = {TEST_REVISION!r}
down_revision = {head!r}
branch_labels = None
depends_on = None
{case.module}


def upgrade() -> None:
{indent(case.upgrade, "    ")}


def downgrade() -> None:
{indent(case.downgrade, "    ")}
'''
    )
    config = project().migrations.alembic_config()
    config.set_main_option("script_location", str(tmp / "alembic"))
    return config
