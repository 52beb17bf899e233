"""The PostgreSQL server a test run uses, and the run's template on it (controller side).

TEST_PGBOUNCER=1 also starts a PgBouncer (transaction mode) in front of that server for
the run: the app under test and the tests' sessions go through it, the harness's admin
work and migrations do not.

TEST_DATABASE_URL names an existing server (any database on it: the harness only creates
and drops databases of its own there). Unset, an embedded server is started for the run
on a kept, git-ignored data directory (`.pgdata-test/`, or TEST_PGDATA), so the migrated
template survives between runs; the server stops when the run ends, or by its guard if
the run is killed. One run at a time uses that directory: a second one waits.
The app's DATABASE_URL is never read: a developer's `.env` may point at a real database.
"""

import fcntl
import os
import sys
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from anyio.from_thread import start_blocking_portal
from sqlalchemy.engine import URL

from pg_harness.databases import (
    PREFIX,
    TestRun,
    create_database,
    database_name,
    drop_database,
    kept_template_name,
)
from pg_harness.embedded.dev import kept_data_dir, own_parent
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.pgbouncer import INSTALL_HINT, PgBouncer, pgbouncer_binary
from pg_harness.roles import RunRoles
from pg_harness.urls import asyncpg_url


@dataclass
class RunDatabases:
    """What workers need to know: where the server is, which run, which template."""

    admin_url: URL
    run: int
    template: str
    template_builds: int
    # The run's roles' password (pg_harness.roles): its databases log in as its owner.
    roles_password: str
    # TEST_PGBOUNCER=1: the port of the run's PgBouncer, which the app under test goes through,
    # and whether it tracks prepared statements (PgBouncer 1.21+).
    pgbouncer_port: int | None = None
    pgbouncer_prepared_statements: bool = False

    @asynccontextmanager
    async def database(self, what: str, migrated: bool = True) -> AsyncIterator[URL]:
        """A database of this run's, named for `what`: a clone of the migrated template, or
        empty (`migrated=False`); dropped on leaving."""
        name = database_name(self.run, what)
        template = self.template if migrated else "template0"
        url = await create_database(self.admin_url, name, template=template, roles=self.roles)
        try:
            yield url
        finally:
            await drop_database(self.admin_url, name)

    @property
    def roles(self) -> RunRoles:
        return RunRoles(f"{PREFIX}{self.run}", self.roles_password)

    def to_workerinput(self) -> dict[str, object]:
        return {
            "test_admin_url": self.admin_url.render_as_string(hide_password=False),
            "test_run": self.run,
            "test_template": self.template,
            "test_template_builds": self.template_builds,
            "test_roles_password": self.roles_password,
            "test_pgbouncer_port": self.pgbouncer_port or 0,
            "test_pgbouncer_prepared_statements": self.pgbouncer_prepared_statements,
        }

    @classmethod
    def from_workerinput(cls, data: dict[str, object]) -> "RunDatabases":
        return cls(
            asyncpg_url(str(data["test_admin_url"])),
            int(str(data["test_run"])),
            str(data["test_template"]),
            int(str(data["test_template_builds"])),
            str(data["test_roles_password"]),
            int(str(data["test_pgbouncer_port"])) or None,
            bool(data["test_pgbouncer_prepared_statements"]),
        )


# Names an existing migrated template for the run to use instead of building its own.
GIVEN_TEMPLATE = "PG_HARNESS_TEMPLATE"


class TestServer:
    """Started by the controller at session start, stopped at unconfigure."""

    __test__ = False

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._embedded: EmbeddedPostgres | None = None
        self._run: TestRun | None = None
        self._pgbouncer: PgBouncer | None = None

    def start(self) -> RunDatabases:
        # A loop in a thread of its own: the controller is synchronous, the run's lock
        # connection must live as long as the run, and migrations run on that loop.
        self._portal = self._stack.enter_context(start_blocking_portal())
        admin_url = self._admin_url()
        self._run = self._portal.call(TestRun.begin, admin_url)
        # A run of an earlier release's tests (pg_harness.migrations.previous_release) is
        # handed a template the current code built: its own migrations are not the point.
        given = os.environ.get(GIVEN_TEMPLATE)
        template = self._portal.call(self._run.kept_template, given or kept_template_name())
        pgbouncer = (
            self._start_pgbouncer(admin_url, self._run.roles)
            if os.environ.get("TEST_PGBOUNCER")
            else None
        )
        return RunDatabases(
            admin_url,
            self._run.number,
            template,
            self._run.template_builds,
            self._run.roles.password,
            pgbouncer.port if pgbouncer else None,
            pgbouncer.tracks_prepared_statements if pgbouncer else False,
        )

    def _start_pgbouncer(self, admin_url: URL, roles: RunRoles) -> PgBouncer:
        if pgbouncer_binary() is None:
            raise RuntimeError(f"TEST_PGBOUNCER is set, but {INSTALL_HINT}")
        # Each test holds a transaction, so a server connection, for its whole length: one
        # per xdist worker, with room for the tests that open more.
        self._pgbouncer = PgBouncer(admin_url, pool_size=20, users=roles.passwords)
        self._pgbouncer.start()
        return self._pgbouncer

    def stop(self) -> None:
        try:
            if self._pgbouncer is not None:
                self._pgbouncer.stop()
            if self._run is not None:
                self._portal.call(self._run.end)
        finally:
            try:
                if self._embedded is not None:
                    self._embedded.stop()
            finally:
                # Last: the data directory's lock, so a waiting run never finds our server.
                self._stack.close()

    def _admin_url(self) -> URL:
        given = os.environ.get("TEST_DATABASE_URL")
        if given:
            return asyncpg_url(given)
        data_dir = kept_test_data_dir()
        own_parent(data_dir)
        lock = self._stack.enter_context(data_dir.with_name(f"{data_dir.name}.lock").open("w"))
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another test run uses {data_dir}; waiting for it to end", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        server = EmbeddedPostgres(data_dir, durable=False)
        port = server.running_port()
        if port is not None:  # started by hand: use it, leave it running
            return server.url(port)
        self._embedded = server
        url = server.start()
        (data_dir / DATA_DIR_MARK).touch()
        return url


# In the embedded test server's data folder: `make clean-db` removes only a folder with it.
DATA_DIR_MARK = "made-by-the-test-harness"


def kept_test_data_dir() -> Path:
    return kept_data_dir(".pgdata-test", "TEST_PGDATA")
