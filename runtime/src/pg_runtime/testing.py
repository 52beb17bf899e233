"""What a service's tests need of the runtime: settings on a test database that no
developer's settings leak into, and an app whose requests' sessions share the test's
transaction.

No pytest here: a project's conftest.py calls these from its fixtures (the template's
tests/conftest.py shows all of them).
"""

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from pg_runtime.dependencies import SessionDependencies
from pg_runtime.roles import Roles
from pg_runtime.sessions import ReadOnlySession
from pg_runtime.settings import RuntimeSettings, SettingsT

# A dependency that overrides one of SessionDependencies': FastAPI calls it with nothing.
SessionOfTheTest = Callable[[], AsyncIterator[AsyncSession]]


def forget_developer_settings(settings_class: type[RuntimeSettings]) -> None:
    """Drop every setting from this process's environment and read no `.env`, for it and
    the processes it starts: a developer's DATABASE_URL may name a real database."""
    for name in (field.upper() for field in settings_class.model_fields):
        os.environ.pop(name, None)
    os.environ["ENV_FILE"] = ""


# pg_harness gives each test run three roles, `<run>_owner`, `<run>_app` and `<run>_reader`,
# with one password: a URL that logs in as such an owner stands for all three, as
# production's DIRECT_URL, DATABASE_URL and DATABASE_READER_URL do.
_OWNER_SUFFIX = "_owner"


def role_urls(database_url: URL) -> dict[str, URL]:
    """The settings' URLs for `database_url`: if it logs in as a test run's owner,
    DIRECT_URL as it, DATABASE_URL as the run's app role, DATABASE_READER_URL as its reader;
    otherwise DATABASE_URL alone."""
    user = database_url.username or ""
    if not user.endswith(_OWNER_SUFFIX):
        return {"database_url": database_url}
    roles = Roles.with_prefix(user, user.removesuffix(_OWNER_SUFFIX))
    return {
        "direct_url": database_url,
        "database_url": database_url.set(username=roles.app),
        "database_reader_url": database_url.set(username=roles.reader),
    }


def role_env(database_url: URL) -> dict[str, str]:
    """`role_urls(database_url)` as environment variables, for a process a test starts."""
    return {
        name.upper(): url.render_as_string(hide_password=False)
        for name, url in role_urls(database_url).items()
    }


def settings_for(
    settings_class: type[SettingsT], database_url: URL, **settings: object
) -> SettingsT:
    """`settings_class` on `database_url` (`role_urls`) and `settings` alone: no environment,
    no `.env`."""
    # pydantic-settings' own keyword arguments (_env_file) beside the fields: typed as
    # neither, the call is checked by pydantic when it runs.
    given: dict[str, Any] = {**role_urls(database_url), **settings}
    return settings_class(_env_file=None, **given)


def settings_through(
    settings_class: type[SettingsT],
    database_url: URL,
    pgbouncer_port: int | None,
    pgbouncer_prepared_statements: bool = False,
) -> SettingsT:
    """The settings for `database_url`: directly, or through a PgBouncer on the same host
    at `pgbouncer_port` (its statement caches on if that PgBouncer tracks prepared
    statements), migrations going around it."""
    if pgbouncer_port is None:
        return settings_for(settings_class, database_url)
    given: dict[str, Any] = {
        name: url.set(port=pgbouncer_port) for name, url in role_urls(database_url).items()
    }
    given |= {
        "db_behind_pgbouncer": True,
        "direct_url": database_url,
        "db_pgbouncer_prepared_statements": pgbouncer_prepared_statements,
    }
    return settings_class(_env_file=None, **given)


def sessions_on(connection: AsyncConnection, sessions: SessionDependencies) -> dict[Any, Any]:
    """`app.dependency_overrides` that give each request a session of its own on the test's
    `connection`, as production gives one on its pools: a commit releases a savepoint, and
    the test's rollback undoes everything. The reading sessions are read-only at the
    server too, by SET TRANSACTION READ ONLY inside their savepoint
    (production's read pool is read-only and in autocommit instead)."""

    def on_the_tests_connection(read_only: bool) -> SessionOfTheTest:
        async def session_of_this_request() -> AsyncIterator[AsyncSession]:
            async with AsyncSession(
                bind=connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
                sync_session_class=ReadOnlySession if read_only else Session,
            ) as session:
                if read_only:  # ends with the savepoint, which closing the session rolls back
                    await session.execute(text("SET TRANSACTION READ ONLY"))
                try:
                    yield session
                except BaseException:
                    await session.rollback()  # to the savepoint: the test's transaction lives on
                    raise

        return session_of_this_request

    read_only = on_the_tests_connection(True)
    return {
        sessions.read: read_only,
        sessions.snapshot: read_only,
        sessions.write: on_the_tests_connection(False),
    }
