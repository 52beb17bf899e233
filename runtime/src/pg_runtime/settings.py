"""The runtime's settings, read from the environment and `.env` (see `.env.example`).

A service extends `RuntimeSettings` with its own fields and loads it with `load()`.
"""

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

from pydantic import BeforeValidator, Field, PlainSerializer, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL

from pg_runtime.database_url import to_asyncpg_url
from pg_runtime.masked_url import MaskedURL

# Shown (repr, str) and dumped (model_dump, model_dump_json) with every password masked,
# the query's too (pg_runtime/masked_url.py). pydantic rebuilds a NamedTuple as the class
# annotated: MaskedURL, not URL, so that the masking survives validation.
DatabaseURL = Annotated[
    MaskedURL,
    BeforeValidator(to_asyncpg_url),
    PlainSerializer(lambda url: url.render_as_string(hide_password=True), return_type=str),
]


# A comma that starts another URL: one within a URL separates libpq's hosts (h1:p1,h2:p2).
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in _NEXT_URL.split(value) if part.strip()]
    return value


# Several URLs separated by commas (one per standby), each checked as DATABASE_URL is.
# NoDecode: pydantic-settings would otherwise expect a JSON list in the environment.
DatabaseURLs = Annotated[list[DatabaseURL], NoDecode, BeforeValidator(_comma_separated)]


# target_session_attrs values that may pick a standby, where a write cannot succeed.
_ASKS_FOR_A_STANDBY = {"read-only", "standby", "prefer-standby"}


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        # Validation errors would otherwise echo DATABASE_URL, password included.
        hide_input_in_errors=True,
        arbitrary_types_allowed=True,
    )

    # production: what a deployed service must be (refusals and exposure decided for the
    # worst case); development: `make run` sets it, for a developer's conveniences.
    environment: Literal["production", "development"] = "production"

    # None: `make run` / `python main.py` start the embedded PostgreSQL; a URL: use that server.
    database_url: DatabaseURL | None = None
    # The server itself, for migrations and admin work, when DATABASE_URL goes through a
    # pooler such as PgBouncer (which cannot hold the session-level advisory lock that
    # migrations take). None: DATABASE_URL.
    direct_url: DatabaseURL | None = None
    # DATABASE_URL goes through PgBouncer in transaction mode: no prepared statements
    # cached across transactions, and timeouts set per transaction (pg_runtime/engine.py).
    db_behind_pgbouncer: bool = False
    # The primary, as a role that can only read (docs/roles.md; `make roles` creates it):
    # GET requests' reads on the primary use it. Unset: DATABASE_URL's role, kept read-only
    # by a default that a handler could undo.
    database_reader_url: DatabaseURL | None = None
    # What production start-up does with an app role that is a superuser or owns the schema,
    # or a reader that can write (pg_runtime/privileges.py): refuse, or warn (for a provider
    # that gives one login and cannot create roles). Development always warns.
    db_role_check: Literal["refuse", "warn"] = "refuse"
    # PgBouncer 1.21+ with max_prepared_statements > 0 tracks prepared statements in
    # transaction mode: asyncpg's statement caches then stay on behind it. The app cannot
    # ask PgBouncer its version; say here what yours does.
    db_pgbouncer_prepared_statements: bool = False

    # Streaming standbys for GET requests' reads: one URL, or several separated by commas
    # (through PgBouncer too when DB_BEHIND_PGBOUNCER is set). Unset: every read on the
    # primary. Writes, and reads of requests that write, always use DATABASE_URL
    # (pg_runtime/standbys.py; docs/standbys.md).
    database_read_url: DatabaseURLs = []
    # Connections per standby per worker process.
    db_standby_pool_size: int = Field(default=10, ge=1)
    # Bytes of WAL a standby may have left to replay and still serve reads that carry no
    # consistency token; more, and reads go elsewhere until it catches up.
    db_standby_max_lag: int = Field(default=16 * 1024 * 1024, ge=0)
    # Seconds between two polls of each standby's replay position and of the primary's.
    db_standby_poll_interval: float = Field(default=1.0, gt=0)
    # Seconds a standby stays out of rotation after it failed a read or a poll.
    db_standby_retry_after: float = Field(default=5.0, ge=0)

    # Per process: a server sees workers x (pool_size + max_overflow) connections at most.
    # Overflow connections are closed as soon as they are returned: under steady load they
    # would mean a new server session every few requests. Size the pool instead.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # GET requests read through a pool of their own, read-only at the server (pg_runtime/engine.py):
    # a worker opens up to DB_POOL_SIZE + DB_MAX_OVERFLOW + DB_READ_POOL_SIZE connections.
    db_read_pool_size: int = Field(default=10, ge=1)
    db_pool_timeout: float = Field(default=10.0, gt=0)  # seconds to wait for a free connection
    db_pool_recycle: int = Field(default=1800, ge=-1)  # seconds; -1 keeps connections forever
    # A connection the server closed (restart, terminated session) is always replaced at
    # checkout, at no cost. Pre-ping also tests each one with a query (0.3 ms CPU per
    # request): for networks that drop idle connections silently (a firewall, NAT).
    db_pool_pre_ping: bool = False
    db_connect_timeout: float = Field(default=5.0, gt=0)  # seconds; asyncpg's default is 60
    # Seconds; 0 means none. A statement running longer is cancelled (the request gets 504);
    # a transaction left idle longer is ended by the server, freeing its locks. The driver
    # gives up on a silent connection a second after DB_STATEMENT_TIMEOUT (also a 504).
    db_statement_timeout: float = Field(default=30.0, ge=0)
    db_idle_in_transaction_timeout: float = Field(default=60.0, ge=0)
    # Seconds a migration waits for a table lock before failing, instead of queueing every
    # request behind it; it does not limit the wait for another instance's migrations.
    migration_lock_timeout: float = Field(default=5.0, ge=0)
    # Seconds a migration waits for another instance's migrations before it gives up
    # (logging who holds the lock meanwhile); 0 means for ever.
    migration_wait_timeout: float = Field(default=600.0, ge=0)
    # Seconds any one statement of a migration may run; 0 means no limit. Revisions that
    # must run long (an index built CONCURRENTLY, a batched backfill) lift it themselves
    # (pg_runtime/migrations/long.py).
    migration_statement_timeout: float = Field(default=60.0, ge=0)
    # Run `alembic upgrade head` at start-up: `python main.py` does it once, before its
    # workers start (instances wait for each other).
    migrate_on_start: bool = False

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # Bytes. A larger request body is refused with 413 before the app reads it whole, so a
    # client cannot make a worker buffer an arbitrarily large body in memory.
    max_body_size: int = Field(default=1_048_576, ge=1)
    # What a client may send, per worker (pg_runtime/bounded_http.py; docs/wire-limits.md).
    # Bytes of a request's line and headers together; more is answered 431.
    max_header_size: int = Field(default=32_768, ge=1024)
    # Seconds to send a request's line and headers, from the connection (or, on a kept-alive
    # one, the request's first byte); later: 408 and closed (closed only if nothing came).
    request_header_timeout: float = Field(default=10.0, gt=0)
    # Seconds to send a body once the headers are in; later: 408 and closed.
    request_body_timeout: float = Field(default=30.0, gt=0)
    # Open connections a worker serves at once; a request on one more is answered 503 and
    # closed. Each is a file descriptor: stay under `ulimit -n` (often 1024) less the pools.
    max_connections: int = Field(default=900, ge=1)
    # Seconds an idle kept-alive connection stays open; longer than a load balancer's idle
    # timeout in front, which would otherwise send a request on a connection being closed.
    keep_alive_timeout: int = Field(default=5, ge=1)
    # JSON values a request body may hold (each member of an object or array counts one);
    # more is a 422 before the app parses it: each value of a refused body can cost an
    # error that FastAPI computes on the event loop (pg_runtime/json_bodies.py).
    max_body_values: int = Field(default=1_000, ge=1)
    # Seconds that in-flight requests get to finish after SIGTERM.
    shutdown_timeout: int = Field(default=20, ge=0)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # text: readable, for a terminal; json: one JSON object per line, for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    # A line per request; behind a proxy that logs requests, turning it off saves CPU.
    access_log: bool = True
    # Prometheus metrics, served by `python main.py` on a port of their own, never the app's:
    # a scraper reaches them there, a client of the API does not (docs/operating.md).
    metrics_enabled: bool = True
    # Where the metrics (and nothing else) are served. 127.0.0.1: only this host scrapes;
    # in a container, 0.0.0.0 and a port the platform does not route publicly.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=1, le=65535)
    # Milliseconds; a statement slower than this is counted and logged (its text, never its
    # parameters); 0 turns it off.
    db_slow_query_ms: float = Field(default=500.0, ge=0)

    @model_validator(mode="after")
    def _fits_pgbouncer(self) -> Self:
        if self.db_behind_pgbouncer and self.database_url and not self.direct_url:
            # Migrations hold a session-level advisory lock and SET lock_timeout: through
            # transaction pooling both would land on server connections other clients get.
            raise ValueError(
                "DB_BEHIND_PGBOUNCER=true needs DIRECT_URL: migrations must reach the "
                "server itself, not PgBouncer"
            )
        pooled = (
            [self.database_url, self.database_reader_url, *self.database_read_url]
            if self.db_behind_pgbouncer
            else []
        )
        if any(url is not None and "options" in url.query for url in pooled):
            # PgBouncer refuses `options` as a startup parameter; a session-level SET
            # would stay on a server connection other clients get next.
            raise ValueError(
                "DATABASE_URL's or DATABASE_READ_URL's options parameter cannot pass through "
                "PgBouncer (DB_BEHIND_PGBOUNCER=true): set those server settings on the "
                "database instead (ALTER DATABASE ... SET name = value)"
            )
        if self.db_pgbouncer_prepared_statements and not self.db_behind_pgbouncer:
            raise ValueError(
                "DB_PGBOUNCER_PREPARED_STATEMENTS=true says what PgBouncer does: it needs "
                "DB_BEHIND_PGBOUNCER=true"
            )
        for name, url in (("DATABASE_URL", self.database_url), ("DIRECT_URL", self.direct_url)):
            wanted = url.query.get("target_session_attrs") if url is not None else None
            if wanted in _ASKS_FOR_A_STANDBY:
                # Its hosts' primary takes the writes and migrations; the app's reads go
                # there too unless DATABASE_READ_URL names standbys.
                raise ValueError(
                    f"{name}'s target_session_attrs={wanted} would connect writes to a "
                    "standby: use read-write or primary (or none); standbys go in "
                    "DATABASE_READ_URL"
                )
        if self.database_reader_url and self.database_url is None:
            raise ValueError("DATABASE_READER_URL needs DATABASE_URL: writes go to the primary")
        if self.database_read_url and self.database_url is None:
            raise ValueError("DATABASE_READ_URL needs DATABASE_URL: writes go to the primary")
        return self

    @model_validator(mode="after")
    def _metrics_apart(self) -> Self:
        if self.metrics_enabled and self.metrics_port == self.port:
            raise ValueError(
                "METRICS_PORT must differ from PORT: the metrics stay off the API's port"
            )
        return self

    @property
    def migration_url(self) -> URL | None:
        return self.direct_url or self.database_url

    @property
    def max_connections_per_worker(self) -> int:
        """To the primary: the write pool, its overflow and the read pool."""
        return self.db_pool_size + self.db_max_overflow + self.db_read_pool_size


SettingsT = TypeVar("SettingsT", bound=RuntimeSettings)


class InvalidSettingsError(ValueError):
    """A setting is wrong; the message names it and never repeats its value."""


def env_file() -> Path | None:
    """The file read for settings the environment lacks: `.env`, or what ENV_FILE names.

    ENV_FILE set but empty: none. The test suite sets it so, so that a developer's `.env`
    (which may name a real database) reaches none of its processes.
    """
    named = os.environ.get("ENV_FILE", ".env")
    return Path(named) if named else None


def load(settings_class: type[SettingsT]) -> SettingsT:
    """`settings_class` from the environment and `env_file()`; a wrong setting raises
    `InvalidSettingsError`, naming it and never its value."""
    try:
        return settings_class(_env_file=env_file())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}".lstrip(": ")
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidSettingsError(f"invalid setting {problems}") from None
