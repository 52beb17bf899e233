"""This project's migrations, as the runtime, the `alembic` command and pg-harness reach them."""

from pathlib import Path

from pg_runtime import roles
from pg_runtime.migrations import Migrations

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Differences between the models and the migrated schema that autogenerate reports but
# that are not real (a type it cannot compare, an object managed outside the models...):
# list them as (kind, name) pairs such as ("index", "ix_note_title_trgm"), and
# `alembic check`, `alembic revision --autogenerate` and the drift test all skip them.
KNOWN_FALSE_POSITIVES: frozenset[tuple[str, str]] = frozenset()

migrations = Migrations(PROJECT_ROOT / "alembic.ini", KNOWN_FALSE_POSITIVES)

# What pg-harness calls ([tool.pg_harness] in pyproject.toml).
upgrade = migrations.upgrade
downgrade = migrations.downgrade
alembic_config = migrations.config
# The app's and the reader's privileges in each test database, as `make roles` grants them.
grant_roles = roles.grant_roles
