"""The probe's migrations, as the runtime, the `alembic` command and pg-harness reach them."""

from pathlib import Path

from pg_runtime import roles
from pg_runtime.migrations import Migrations

PROBE_ROOT = Path(__file__).resolve().parent
ALEMBIC_INI = PROBE_ROOT / "alembic.ini"

migrations = Migrations(ALEMBIC_INI)

# What pg-harness calls ([tool.pg_harness] in runtime/pyproject.toml).
upgrade = migrations.upgrade
downgrade = migrations.downgrade
alembic_config = migrations.config
# The app's and the reader's privileges in each test database, as `make roles` grants them.
grant_roles = roles.grant_roles
