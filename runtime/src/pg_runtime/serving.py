"""Serving an app with uvicorn from `python main.py`: settings checked, migrations run
once, workers started, metrics shared across them on a port of their own, SIGTERM honoured."""

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from alembic.util import CommandError
from fastapi import FastAPI

from pg_runtime.bounded_http import WireLimits, bounded_protocol
from pg_runtime.migrations import Migrations
from pg_runtime.observability.logs import configure_logging, logging_config
from pg_runtime.observability.metrics import shared_across_workers
from pg_runtime.observability.metrics_port import MetricsPortError, metrics_port
from pg_runtime.privileges import check_roles
from pg_runtime.settings import InvalidSettingsError, RuntimeSettings, SettingsT


def settings_or_exit(load_settings: Callable[[], SettingsT]) -> SettingsT:
    """The settings, or the process exits naming what is wrong (never with a traceback)."""
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


def serve(settings: RuntimeSettings, migrations: Migrations, app_path: str) -> None:
    """Serve `app_path` (`module:attribute`, imported by each worker) as `settings` say:
    MIGRATE_ON_START first, once, then WORKERS processes."""
    configure_logging(settings)  # the supervisor's own lines: migrations, workers started
    if settings.migrate_on_start:
        _migrate(settings, migrations)
    try:  # once here, for a refusal in one line; each worker's start-up checks again
        asyncio.run(check_roles(settings))
    except InvalidSettingsError as exc:
        sys.exit(f"error: {exc}")
    with shared_across_workers(settings.workers), _metrics_served(settings):
        uvicorn.run(
            app_path,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=logging_config(settings),
            log_level=settings.log_level,
            # The app logs each request itself, with its route template, duration and id.
            access_log=False,
            # A worker answers the supervisor's health ping only after it has imported the
            # app; uvicorn's 5 s default killed and respawned workers forever on a busy
            # 2-core machine.
            timeout_worker_healthcheck=60,
            # On SIGTERM: stop accepting, let in-flight requests finish for this long, then
            # run the lifespan's shutdown, which closes the pool.
            timeout_graceful_shutdown=settings.shutdown_timeout,
            # What a client may send: uvicorn bounds neither the head's size nor the time
            # to send it or the body (pg_runtime/bounded_http.py).
            http=bounded_protocol(
                WireLimits(
                    max_header_size=settings.max_header_size,
                    header_timeout=settings.request_header_timeout,
                    body_timeout=settings.request_body_timeout,
                )
            ),
            # uvicorn counts the connection asking among those open: one more lets
            # MAX_CONNECTIONS be served.
            limit_concurrency=settings.max_connections + 1,
            timeout_keep_alive=settings.keep_alive_timeout,
        )


@contextmanager
def _metrics_served(settings: RuntimeSettings) -> Iterator[None]:
    # Started before the workers, so a port in use stops start-up at once, with its reason.
    if not settings.metrics_enabled:
        yield
        return
    try:
        with metrics_port(settings.metrics_host, settings.metrics_port):
            yield
    except MetricsPortError as exc:
        sys.exit(f"error: {exc}")


def _migrate(settings: RuntimeSettings, migrations: Migrations) -> None:
    # In each worker's start-up instead, one that gave up (MIGRATION_WAIT_TIMEOUT) would
    # make uvicorn stop them all, mid-way through the others' start-up; here start-up stops
    # before serving, with the reason. The workers read MIGRATE_ON_START=false.
    try:
        asyncio.run(migrations.upgrade_database(settings))
    except CommandError as exc:
        sys.exit(f"error: migrations at start-up failed: {exc}")
    os.environ["MIGRATE_ON_START"] = "false"


def worker_app(settings: SettingsT, create_app: Callable[[SettingsT], FastAPI]) -> FastAPI:
    """The app a serving process builds: logging configured first, then `create_app`."""
    configure_logging(settings)
    app = create_app(settings)
    # Each request allocates thousands of short-lived objects (ORM rows, pydantic models):
    # at CPython's default the youngest generation is collected every 700 allocations and
    # the older ones scanned with all of the app's modules. Freezing what import created
    # and collecting every 10,000 costs less CPU per request (bench/throughput.py).
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    return app
