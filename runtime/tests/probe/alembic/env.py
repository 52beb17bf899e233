"""The probe's Alembic environment: the runtime's `run_env`, as a service's env.py has it."""

from pg_runtime.migrations.env import run_env
from probe.migrations import migrations
from probe.models import Base
from probe.settings import load_settings

run_env(Base.metadata, migrations, load_settings)
