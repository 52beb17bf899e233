"""The application's engines, built from settings: pool, PgBouncer mode, timeouts, failures."""

from typing import Any

from asyncpg.exceptions import TargetServerAttributeNotMatched
from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, Dialect, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from pg_runtime.database_url import DriverOptions, driver_options, milliseconds
from pg_runtime.failures import (
    CommitOutcomeUnknownError,
    DatabaseNoAnswerError,
    DatabaseUnavailableError,
)
from pg_runtime.observability.database import MeasuredPool, observe
from pg_runtime.session_reset import TRANSACTION_ONLY, reset_sessions
from pg_runtime.settings import RuntimeSettings

# The driver's own timeout waits this much longer than DB_STATEMENT_TIMEOUT, so that on a
# live server the server's cancel (a clean 57014, the connection kept) always comes first.
COMMAND_TIMEOUT_MARGIN = 1.0
# Marks a connection whose COMMIT is in flight: a failure then leaves the outcome unknown.
_COMMITTING = "committing"


def session_timeouts(settings: RuntimeSettings) -> dict[str, str]:
    """The server settings that bound how long a statement or an idle transaction may last.

    A timeout set to 0 is left out: the server's own setting applies.
    """
    timeouts = {
        "statement_timeout": settings.db_statement_timeout,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout,
    }
    return {name: milliseconds(seconds) for name, seconds in timeouts.items() if seconds}


def command_timeout(settings: RuntimeSettings) -> float | None:
    """asyncpg's limit on waiting for any answer, a little above DB_STATEMENT_TIMEOUT.

    A connection that dies without a word (a failover, a NAT forgetting it) would otherwise
    hold its request and its pool slot for the operating system's TCP timeout.
    """
    if not settings.db_statement_timeout:
        return None
    return settings.db_statement_timeout + COMMAND_TIMEOUT_MARGIN


def create_app_engine(
    settings: RuntimeSettings, url: URL, read_only: bool = False, standby: str | None = None
) -> AsyncEngine:
    """The engine for requests; `read_only`: the one GET requests read through; `standby`:
    the one of that standby (DATABASE_READ_URL), read-only too.

    Reads are read-only at the server, so a write slipped into a GET handler (raw SQL, a
    Core statement) fails there instead of committing. Directly, a read connection starts
    with `default_transaction_read_only` and runs in autocommit: no BEGIN or ROLLBACK round
    trips. PgBouncer refuses that startup parameter, so behind it reads stay in
    transactions, begun as `BEGIN READ ONLY` (the same one round trip as a plain BEGIN).
    """
    read_only = read_only or standby is not None
    timeouts = session_timeouts(settings)
    driver = driver_options(url)
    connect_args = _connect_args(settings, driver, command_timeout(settings))
    # The URL's application_name and options, then the DB_ settings, which win: the
    # driver's command timeout is derived from DB_STATEMENT_TIMEOUT.
    server_settings = dict(driver.server_settings)
    engine_options: dict[str, Any] = {}
    if settings.db_behind_pgbouncer:
        if read_only:
            engine_options["execution_options"] = {"postgresql_readonly": True}
    else:
        # Startup parameters: free, and they hold for the connection's life.
        server_settings |= timeouts
        if read_only:
            server_settings["default_transaction_read_only"] = "on"
            engine_options["isolation_level"] = "AUTOCOMMIT"
            _target_by_role(connect_args)
    if server_settings:
        connect_args["server_settings"] = server_settings
    if standby is not None:
        pool_size, pool = settings.db_standby_pool_size, standby
    elif read_only:
        pool_size, pool = settings.db_read_pool_size, "read"
    else:
        pool_size, pool = settings.db_pool_size, "write"
    if not settings.db_behind_pgbouncer:
        engine_options["pool_reset_on_return"] = None  # pg_runtime.session_reset rolls back
    engine = create_async_engine(
        driver.url,
        pool_size=pool_size,
        max_overflow=0 if read_only else settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        poolclass=MeasuredPool,
        # An error's text then never carries the statement's values, whoever logs it
        # (pg_runtime/error_log.py writes none; a library's own log line might).
        hide_parameters=True,
        connect_args=connect_args,
        **engine_options,
    )
    _handle_failures(engine)
    reset_sessions(engine, settings.db_behind_pgbouncer)
    if engine_options.get("isolation_level") == "AUTOCOMMIT":
        _back_to_autocommit_on_return(engine)
    if settings.db_behind_pgbouncer and timeouts:
        _set_timeouts_per_transaction(engine, timeouts)
    # After _handle_failures: a closed connection it discards is not counted as used.
    observe(engine, pool, settings)
    return engine


def create_poll_engine(settings: RuntimeSettings, url: URL, connections: int = 1) -> AsyncEngine:
    """Connections of their own for pg_runtime/standbys.py's polls of replay and WAL positions.

    Out of the requests' pools, so that a busy pool never delays a poll (nor a poll a
    request), and bounded by DB_CONNECT_TIMEOUT, connecting and answering alike: a server
    that hangs fails its poll, and is taken out of rotation, instead of holding it.
    Not measured or traced: a poll is not a request's work.
    """
    driver = driver_options(url)
    connect_args = _connect_args(settings, driver, settings.db_connect_timeout)
    if driver.server_settings:
        connect_args["server_settings"] = dict(driver.server_settings)
    engine = create_async_engine(
        driver.url,
        pool_size=connections,
        max_overflow=0,
        pool_timeout=settings.db_connect_timeout,
        isolation_level="AUTOCOMMIT",  # one statement per poll: no BEGIN, no ROLLBACK
        hide_parameters=True,
        connect_args=connect_args,
    )
    _handle_failures(engine)
    return engine


def _connect_args(
    settings: RuntimeSettings, driver: DriverOptions, answer_within: float | None
) -> dict[str, Any]:
    """asyncpg's arguments for every engine: the URL's, the connect timeout, the command
    timeout `answer_within`, and no statement caches where PgBouncer cannot keep them."""
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,  # the URL's connect_timeout, if any, wins
        "command_timeout": answer_within,
        **driver.connect_args,
    }
    if settings.db_behind_pgbouncer and not settings.db_pgbouncer_prepared_statements:
        # In transaction mode each transaction may get another server connection, where a
        # statement prepared earlier does not exist, or another client's statement has its
        # name. With both caches off asyncpg prepares an unnamed statement inside the
        # transaction that runs it (asyncpg >= 0.31). PgBouncer 1.21+ tracks names itself
        # when max_prepared_statements is set: DB_PGBOUNCER_PREPARED_STATEMENTS.
        connect_args |= {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return connect_args


# asyncpg judges read-write and read-only by the session's default_transaction_read_only,
# which a read connection turns on itself at startup: read-write would refuse every host,
# read-only accept any. What the URL means by them is the server's role, which asyncpg
# judges by in_hot_standby: the primary, a standby.
_BY_ROLE = {"read-write": "primary", "read-only": "standby"}


def _target_by_role(connect_args: dict[str, Any]) -> None:
    """Ask a read-only connection's hosts for the role its URL's target_session_attrs means."""
    wanted = connect_args.get("target_session_attrs")
    if wanted in _BY_ROLE:
        connect_args["target_session_attrs"] = _BY_ROLE[wanted]


def _handle_failures(engine: AsyncEngine) -> None:
    _replace_closed_connections(engine)
    _name_failures(engine)
    _close_timed_out_connections_at_once(engine)


def _replace_closed_connections(engine: AsyncEngine) -> None:
    # A server that restarts, or ends a session (pg_terminate_backend, an idle timeout),
    # closes its socket, and the event loop has seen it by the time a request checks the
    # connection out: asking asyncpg costs no round trip, where pool_pre_ping's three
    # (BEGIN, an empty query, ROLLBACK) cost a GET a third of its CPU (bench/throughput.py).
    # The pool then connects anew.
    @event.listens_for(engine.sync_engine, "checkout")
    def replace_if_closed(
        dbapi_connection: object, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        if record.driver_connection is not None and record.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


def _name_failures(engine: AsyncEngine) -> None:
    """Turn the driver's builtin exceptions into pg_runtime/failures.py's, where they arise."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(
        dialect: Dialect, record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]
    ) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as error:  # refused, unreachable, or DB_CONNECT_TIMEOUT (TimeoutError)
            raise DatabaseUnavailableError(type(error).__name__) from error
        except Exception as error:
            # Every host answered, none in the role target_session_attrs asks for: a
            # failover under way, the primary not promoted yet. (SQLAlchemy's adapter
            # wraps asyncpg's error in a DBAPI one.)
            if not isinstance(error.__cause__, TargetServerAttributeNotMatched):
                raise
            raise DatabaseUnavailableError(type(error.__cause__).__name__) from error

    @event.listens_for(engine.sync_engine, "commit")
    def mark_commit(connection: Connection) -> None:
        connection.info[_COMMITTING] = True

    @event.listens_for(engine.sync_engine, "begin")
    def clear_commit_mark(connection: Connection) -> None:
        connection.info.pop(_COMMITTING, None)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def clear_commit_mark_on_return(dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info.pop(_COMMITTING, None)

    @event.listens_for(engine.sync_engine, "handle_error")
    def name_failure(context: ExceptionContext) -> Exception | None:
        error = context.original_exception
        committing = context.connection is not None and context.connection.info.pop(
            _COMMITTING, False
        )
        if isinstance(error, TimeoutError):
            # asyncpg's command timeout: the connection may hold a half-read answer, so it
            # is discarded rather than returned to the pool.
            context.is_disconnect = True
        if committing and context.is_disconnect:
            return CommitOutcomeUnknownError(type(error).__name__)
        if isinstance(error, TimeoutError):
            return DatabaseNoAnswerError(type(error).__name__)
        return None


def _close_timed_out_connections_at_once(engine: AsyncEngine) -> None:
    # A connection discarded after asyncpg's command timeout is first closed gracefully,
    # which waits (SQLAlchemy gives it 2 s) for the server to acknowledge the cancel asyncpg
    # sent on timing out: a silent server never does, and the request waits that long too.
    @event.listens_for(engine.sync_engine.pool, "invalidate")
    def close_at_once(
        dbapi_connection: object, record: ConnectionPoolEntry, exception: BaseException | None
    ) -> None:
        if isinstance(exception, TimeoutError) and record.driver_connection is not None:
            record.driver_connection.terminate()


def _back_to_autocommit_on_return(engine: AsyncEngine) -> None:
    # A read session that streamed began a transaction on its connection
    # (pg_runtime.sessions); the pool has rolled it back by now: the next read needs none.
    @event.listens_for(engine.sync_engine.pool, "checkin")
    def autocommit_again(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None and not dbapi_connection.autocommit:
            dbapi_connection.set_isolation_level("autocommit")


def _set_timeouts_per_transaction(engine: AsyncEngine, timeouts: dict[str, str]) -> None:
    # PgBouncer refuses these as startup parameters, and a session-level SET would stay on
    # the server connection for whichever client gets it next: set them for each
    # transaction only, at one round trip per transaction.
    set_local = "SELECT " + ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in timeouts.items()
    )

    @event.listens_for(engine.sync_engine, "begin")
    def set_timeouts(connection: Connection) -> None:
        connection.exec_driver_sql(set_local, execution_options={TRANSACTION_ONLY: True})
