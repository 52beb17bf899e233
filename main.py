"""The ASGI application (`uvicorn main:app`); `python main.py` serves it."""

import asyncio
import gc
import os
import sys

import uvicorn
from alembic.util import CommandError

from app.factory import create_app
from app.observability.logs import configure_logging, logging_config
from app.observability.metrics import shared_across_workers
from app.settings import InvalidSettingsError, Settings, load_settings
from orm.migrations import upgrade_database


def _settings() -> Settings:
    try:
        settings = load_settings()
    except InvalidSettingsError as exc:
        sys.exit(f"error: {exc}")
    if settings.database_url is None:
        # Fail closed: a secret that did not reach the container must stop the service, not
        # start an empty database on its disk. Development goes through `make run`, which
        # starts the embedded server and sets DATABASE_URL (pg_harness.embedded).
        sys.exit(
            "error: DATABASE_URL is not set (neither in the environment nor in .env): "
            "point it at your PostgreSQL, or use `make run` for the embedded development server"
        )
    return settings


def migrate(settings: Settings) -> None:
    """MIGRATE_ON_START, once, before any worker starts.

    In each worker's start-up instead, one that gave up (MIGRATION_WAIT_TIMEOUT) would make
    uvicorn stop them all, mid-way through the others' start-up; here start-up stops
    before serving, with the reason. The workers import this module anew and read
    MIGRATE_ON_START=false, so they do not migrate again.
    """
    try:
        asyncio.run(upgrade_database(settings))
    except CommandError as exc:
        sys.exit(f"error: migrations at start-up failed: {exc}")
    os.environ["MIGRATE_ON_START"] = "false"


def serve(settings: Settings, app_path: str = "main:app") -> None:
    """Serve `app_path` (imported by each worker) with the settings' workers and timeouts."""
    if settings.migrate_on_start:
        migrate(settings)
    with shared_across_workers(settings.workers):
        _run(settings, app_path)


def _run(settings: Settings, app_path: str) -> None:
    uvicorn.run(
        app_path,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(settings),
        log_level=settings.log_level,
        # The app logs each request itself, with its route template, duration and id.
        access_log=False,
        # A worker answers the supervisor's health ping only after it has imported the app;
        # uvicorn's 5 s default killed and respawned workers forever on a busy 2-core machine.
        timeout_worker_healthcheck=60,
        # On SIGTERM: stop accepting, let in-flight requests finish for this long, then
        # run the lifespan's shutdown, which closes the pool.
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


def _tune_garbage_collection() -> None:
    # Each request allocates thousands of short-lived objects (ORM rows, pydantic models):
    # at CPython's default the youngest generation is collected every 700 allocations and
    # the older ones scanned with all of the app's modules. Freezing what import created and
    # collecting every 10,000 cut 3-11 % of CPU per request (bench/throughput.py).
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


settings = _settings()
# Before anything logs; each worker runs this too, as it imports this module.
configure_logging(settings)
app = create_app(settings)
_tune_garbage_collection()

if __name__ == "__main__":
    serve(_settings())
