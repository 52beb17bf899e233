"""Alembic's environment: async migrations over asyncpg, run by the runtime.

From the `alembic` command line it connects to DIRECT_URL (or DATABASE_URL); from code
that already runs an event loop (the tests, MIGRATE_ON_START), the caller's connection
arrives in a context variable and the migration runs on that loop
(pg_runtime.migrations.env says how).
"""

from pg_runtime.migrations.env import run_env

import orm.models  # noqa: F401  (registers every table on Base.metadata)
from app.settings import load_settings
from orm.base import Base
from orm.migrations import migrations

run_env(Base.metadata, migrations, load_settings)
