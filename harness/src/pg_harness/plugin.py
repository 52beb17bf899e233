"""The pytest plugin (entry point `pytest11`): the run's server and its migrated template.

How a run goes:
- the controller (the xdist controller, or the only process of a plain `pytest` run)
  starts or finds the server and builds the migrated template once (server.py);
- each worker clones its own database from the template, once (fixtures.py);
- each test runs inside a transaction on that database that is rolled back afterwards;
- a test that needs real commits, several connections or DDL takes `fresh_database`.
"""

import os

import pytest

from pg_harness.migrations.checks import history_problems
from pg_harness.project import pin_project
from pg_harness.server import RunDatabases, TestServer

_SERVER = pytest.StashKey[TestServer]()
_DATABASES = pytest.StashKey[RunDatabases]()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    pin_project(config.rootpath)
    # The developer's own embedded server must stay theirs: the run starts its own.
    os.environ.pop("EMBEDDED_PGDATA", None)
    config.addinivalue_line("markers", "slow: starts processes or servers")
    # Registered now, after every entry-point plugin: our `anyio_backend` (one event loop
    # for the whole run, which the session's database fixtures need) replaces anyio's.
    from pg_harness import fixtures

    config.pluginmanager.register(fixtures, "pg_harness.fixtures")


def pytest_sessionstart(session: pytest.Session) -> None:
    # Runs in the controller before xdist starts its workers (its own hook runs last).
    config = session.config
    if is_worker(config):
        return
    # The template is built by migrating to the head: say why if there is no one head.
    if problems := history_problems():
        raise pytest.UsageError(
            "the migrated template cannot be built, the revision history is broken:\n  "
            + "\n  ".join(problems)
        )
    server = TestServer()
    config.stash[_SERVER] = server
    config.stash[_DATABASES] = server.start()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: a run without xdist never calls it
def pytest_configure_node(node: object) -> None:
    """xdist hook (controller): hand each worker the run's databases."""
    config = node.config  # type: ignore[attr-defined]
    node.workerinput.update(config.stash[_DATABASES].to_workerinput())  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    # Runs after the workers are gone, on failures and on Ctrl-C too.
    server = config.stash.get(_SERVER, None)
    if server is not None:
        server.stop()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    databases = config.stash.get(_DATABASES, None)
    if databases is not None:
        reused = (
            "" if databases.template_builds else " (kept from an earlier run: migrations unchanged)"
        )
        terminalreporter.write_line(
            f"migrated template {databases.template}: built {databases.template_builds} "
            f"time(s) this run{reused}"
        )


def run_databases_of(config: pytest.Config) -> RunDatabases:
    if is_worker(config):
        return RunDatabases.from_workerinput(config.workerinput)  # type: ignore[attr-defined]
    return config.stash[_DATABASES]
