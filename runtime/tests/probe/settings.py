"""The probe's settings: the runtime's, and nothing of its own."""

from pg_runtime.settings import RuntimeSettings, load
from sqlalchemy.engine import URL


class ProbeSettings(RuntimeSettings):
    pass


def load_settings() -> ProbeSettings:
    return load(ProbeSettings)


def configured_database_url() -> URL | None:
    """DATABASE_URL as the settings see it (`[tool.pg_harness]` in runtime/pyproject.toml)."""
    return load_settings().database_url
