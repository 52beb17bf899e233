"""The project the harness serves, as its `pyproject.toml` describes it under `[tool.pg_harness]`.

```toml
[tool.pg_harness]
# upgrade(), downgrade() and alembic_config(): the project's way into its alembic/env.py
migrations = "orm.migrations"
# returns the app's DATABASE_URL, or None: `python -m pg_harness.embedded` then starts one
database-url = "app.settings:configured_database_url"
# what decides the migrated schema: the kept template is rebuilt when one of them changes
schema-sources = ["alembic", "orm", "alembic.ini", "uv.lock"]
# the release whose tests must pass on the new schema (a git ref; default: the newest tag
# before HEAD, else the merge-base with the main branch), and its pytest options
previous-release = "v1.4.0"
previous-release-pytest-args = ["-m", "not slow", "--ignore=tests/migrations", "-n", "2"]
```

Under pytest, the project of the run's rootdir; otherwise (the command-line entry points)
the one found from the working directory upwards.
"""

import importlib
import os
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection


class Migrations(Protocol):
    """What the harness needs of the project's migration module."""

    def alembic_config(self) -> Config: ...

    async def upgrade(
        self, connection: AsyncConnection, revision: str = "head", config: Config | None = None
    ) -> None: ...

    async def downgrade(
        self, connection: AsyncConnection, revision: str, config: Config | None = None
    ) -> None: ...


@dataclass(frozen=True)
class Project:
    root: Path
    migrations_module: str
    database_url_function: str | None
    schema_sources: tuple[str, ...]
    previous_release: str | None = None
    previous_release_pytest_args: tuple[str, ...] = ()

    @property
    def migrations(self) -> Migrations:
        return cast(Migrations, self.import_module(self.migrations_module))

    def configured_database_url(self) -> object | None:
        """The app's own DATABASE_URL, if its settings name one."""
        if self.database_url_function is None:
            return os.environ.get("DATABASE_URL") or None
        module, _, name = self.database_url_function.partition(":")
        function: Callable[[], object] = getattr(self.import_module(module), name)
        return function()

    def import_module(self, module: str) -> ModuleType:
        """One of the project's modules, imported from its root, whoever runs us from where."""
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        return importlib.import_module(module)


class ProjectNotFoundError(RuntimeError):
    pass


def find_project(start: Path) -> Project:
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        config = tomllib.loads(pyproject.read_text()).get("tool", {}).get("pg_harness")
        if config is None:
            continue
        return Project(
            root=folder,
            migrations_module=config.get("migrations", "orm.migrations"),
            database_url_function=config.get("database-url"),
            schema_sources=tuple(
                config.get("schema-sources", ["alembic", "orm", "alembic.ini", "uv.lock"])
            ),
            previous_release=config.get("previous-release"),
            previous_release_pytest_args=tuple(config.get("previous-release-pytest-args", ())),
        )
    raise ProjectNotFoundError(
        f"no pyproject.toml with a [tool.pg_harness] table in {start} or above it "
        "(harness/README.md says what goes there)"
    )


_pinned: list[Project] = []


def pin_project(root: Path) -> None:
    """Serve the project at `root` (pytest's rootdir), wherever the run was started from."""
    _pinned[:] = [find_project(root.resolve())]


@cache
def _project_of_working_directory() -> Project:
    return find_project(Path.cwd().resolve())


def project() -> Project:
    """The project pytest runs (its rootdir), else that of the working directory (`make`)."""
    return _pinned[0] if _pinned else _project_of_working_directory()
