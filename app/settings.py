"""The service's settings: the runtime's (database, pools, serving, observability; every
one is in `.env.example`) and the service's own, from the environment and `.env`."""

from pg_runtime.settings import RuntimeSettings, load
from sqlalchemy.engine import URL


class Settings(RuntimeSettings):
    """Add the service's own settings here, each with a safe default and a line in
    `.env.example`; secrets as `SecretStr`."""


def load_settings() -> Settings:
    return load(Settings)


def configured_database_url() -> URL | None:
    """DATABASE_URL as the settings see it; `make run` starts the embedded server without one."""
    return load_settings().database_url
