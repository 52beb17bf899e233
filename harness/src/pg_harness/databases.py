"""The temporary databases of one test run: names, the migrated template, cleanup.

Every database a run creates for itself is named `pytest_r<run>_<what>`, so it is
recognisable and says which run made it, and marked with a comment (MARK): a database
without it is never dropped, whatever its name. The run holds a session-level advisory
lock keyed by its number for as long as it lives, always in the `postgres` database
(advisory locks belong to a database: runs whose admin URLs name different ones would
not see each other's). A later run that can take a dead run's lock knows that run is gone
(the server released the lock with its connection), and only then drops its leftovers;
two live runs on one server never touch each other's databases, and nothing else on the
server is ever touched.

The one exception to "a run leaves nothing behind" is the migrated template, kept between
runs as `pytest_tpl_<project>_<fingerprint>`: the fingerprint hashes every file that
decides the migrated schema, so a warm run does no migration work at all and a changed
migration gets a new template. The run that builds a new one drops the project's older
ones, unless another live run still clones from them (it holds a shared lock on its
template). `make clean-db` drops them by hand.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from pg_harness.project import project
from pg_harness.roles import (
    RunRoles,
    create_template_owner,
    drop_role,
    hand_over,
    marked_roles,
    quoted,
)
from pg_harness.urls import with_database

PREFIX = "pytest_r"
_NAME = re.compile(rf"^{PREFIX}(\d+)_")
# First key of the two-key advisory lock: "this is a test run"; the second is its number.
LOCK_CLASS = 0x7E57
# ... "a run uses this kept template" (shared) and "... is building it"; the second key
# is hashtext(its name).
_TEMPLATE_LOCK_CLASS = 0x7E58
_TEMPLATE_BUILD_LOCK_CLASS = 0x7E59

KEPT_PREFIX = "pytest_tpl_"
# On every database the harness creates; only databases that carry it are ever dropped.
MARK = "made by the test harness of this project (pg_harness), which drops it"
# The mark of the harness before it was a package: databases it made are still its own.
_EARLIER_MARKS = ("made by the test harness of this project (tests/databases.py), which drops it",)
_MARKS = [MARK, *_EARLIER_MARKS]
# Where every advisory lock of the harness lives, whichever database the admin URL names.
LOCK_DATABASE = "postgres"


def migrations_fingerprint(root: Path | None = None) -> str:
    # Everything that decides the migrated schema (`schema-sources`): the migrations and
    # what they import, the Alembic set-up, the locked versions that render the DDL.
    root = root or project().root
    digest = hashlib.sha256()
    # How the harness builds a template counts too: one from before its objects belonged to a
    # role of its own (pg_harness.roles) cannot be handed to a run's owner.
    digest.update(b"objects owned by a role named as the template\0")
    for source in project().schema_sources:
        path = root / source
        files = (
            sorted(path.rglob("*.py")) + sorted(path.rglob("*.mako")) if path.is_dir() else [path]
        )
        for file in files:
            digest.update(f"{file.relative_to(root)}\0".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def kept_templates_prefix(root: Path | None = None) -> str:
    """What the names of the project's kept templates start with: one per checkout name."""
    root = root or project().root
    slug = re.sub(r"[^a-z0-9]+", "_", root.name.lower()).strip("_")[:20] or "project"
    return f"{KEPT_PREFIX}{slug}_"


def kept_template_name(root: Path | None = None) -> str:
    return f"{kept_templates_prefix(root)}{migrations_fingerprint(root)}"


def _is_kept_template_of(root: Path | None, name: str) -> bool:
    return re.fullmatch(rf"{kept_templates_prefix(root)}[0-9a-f]{{16}}", name) is not None


def admin_engine(admin_url: URL) -> AsyncEngine:
    """Autocommit (CREATE/DROP DATABASE cannot run in a transaction), in LOCK_DATABASE."""
    return create_async_engine(
        with_database(admin_url, LOCK_DATABASE), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def database_name(run: int, what: str) -> str:
    return f"{PREFIX}{run}_{what}"


async def database_names(admin_url: URL, prefix: str) -> set[str]:
    engine = admin_engine(admin_url)
    try:
        async with engine.connect() as connection:
            names = await connection.scalars(
                text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"),
                {"prefix": prefix},
            )
            return set(names)
    finally:
        await engine.dispose()


async def create_database(
    admin_url: URL, name: str, template: str = "template0", roles: RunRoles | None = None
) -> URL:
    """A database `name` cloned from `template`: the admin's, or (`roles`) owned by the run's
    owner with the app's and the reader's privileges, its URL then logging in as the owner."""
    owner = f' OWNER "{roles.owner}"' if roles else ""
    engine = admin_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{owner}'))
            await connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{MARK}'"))
    finally:
        await engine.dispose()
    url = with_database(admin_url, name)
    if roles is None:
        return url
    clone = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with clone.connect() as connection:
            # A kept template's objects belong to a role named as it (build_template).
            await hand_over(connection, None if template == "template0" else template, roles)
    finally:
        await clone.dispose()
    return url.set(username=roles.owner, password=roles.password)


async def drop_database(admin_url: URL, name: str) -> None:
    engine = admin_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await _drop(connection, name)
    finally:
        await engine.dispose()


_MARKED = "shobj_description(oid, 'pg_database') = ANY(:marks)"


async def _drop(connection: AsyncConnection, name: str) -> None:
    """Drop `name` if the harness made it (it carries MARK); leave any other alone."""
    # A template cannot be dropped until it is unmarked; FORCE ends sessions a test left open.
    is_template = await connection.scalar(
        text(f"SELECT datistemplate FROM pg_database WHERE datname = :name AND {_MARKED}"),
        {"name": name, "marks": _MARKS},
    )
    if is_template is None:
        return
    if is_template:
        await connection.execute(text(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false'))
    await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await drop_role(connection, name)  # a kept template's: the role its objects belonged to


@dataclass
class TestRun:
    """One pytest run's hold on the server; lives in the controller process."""

    __test__ = False  # not a test class, despite the name

    admin_url: URL
    number: int
    _engine: AsyncEngine
    _lock: AsyncConnection
    roles: RunRoles
    template_builds: int = 0

    @classmethod
    async def begin(cls, admin_url: URL) -> "TestRun":
        engine = admin_engine(admin_url)
        lock = await engine.connect()
        while True:
            number = secrets.randbelow(2**31)
            taken = await lock.scalar(
                text("SELECT pg_try_advisory_lock(:class, :run)"),
                {"class": LOCK_CLASS, "run": number},
            )
            if taken:
                break
        roles = RunRoles(f"{PREFIX}{number}", secrets.token_urlsafe(24))
        run = cls(admin_url, number, engine, lock, roles)
        await run._drop_leftovers_of_dead_runs()
        await roles.create(lock)
        return run

    def database(self, what: str) -> str:
        return database_name(self.number, what)

    async def build_template(self, owner: str | None = None) -> str:
        """A database at the head revision, built by the real migrations, closed to connections.

        Migrated as `owner` (default: a role named as the database), a role that is no
        superuser, as production's migrations run as the schema's owner; the clones hand
        its objects to their run's owner.
        """
        name = self.database("template")
        owner = owner or name
        await create_template_owner(self._lock, owner)
        url = await create_database(self.admin_url, name)
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.execute(text(f"GRANT CREATE ON SCHEMA public TO {quoted(owner)}"))
                await connection.execute(text(f"SET ROLE {quoted(owner)}"))
                await connection.commit()
                await project().migrations.upgrade(connection)
        finally:
            # CREATE DATABASE ... TEMPLATE fails while anything is connected to the template.
            await engine.dispose()
        await self._lock.execute(
            text(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        )
        self.template_builds += 1
        return name

    async def kept_template(self, name: str) -> str:
        """The kept template `name`, built now unless a run already built it.

        Holds a shared lock on it until the run ends, so no other run drops it meanwhile.
        """
        use = {"class": _TEMPLATE_LOCK_CLASS, "name": name}
        build = {"class": _TEMPLATE_BUILD_LOCK_CLASS, "name": name}
        lock = "SELECT pg_advisory_lock{kind}(:class, hashtext(:name))"
        unlock = "SELECT pg_advisory_unlock{kind}(:class, hashtext(:name))"
        while True:
            # Shared while in use: runs on one server share a template without waiting.
            await self._lock.execute(text(lock.format(kind="_shared")), use)
            if await self._exists(name):
                await drop_kept_templates(self._lock, keep=name)
                return name
            await self._lock.execute(text(unlock.format(kind="_shared")), use)
            # A lock of its own for building: a second run waits for the first's build,
            # then finds it. Built under this run's name and renamed when complete: a run
            # killed mid-build leaves a dead run's leftover, never a half-built template.
            await self._lock.execute(text(lock.format(kind="")), build)
            try:
                if not await self._exists(name):
                    built = await self.build_template(owner=name)
                    await self._lock.execute(text(f'ALTER DATABASE "{built}" RENAME TO "{name}"'))
            finally:
                await self._lock.execute(text(unlock.format(kind="")), build)

    async def _exists(self, name: str) -> bool:
        found = await self._lock.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        return found is not None

    async def end(self) -> None:
        """Drop every database of this run (a crashed worker's too), then release the lock."""
        if self._lock.closed:  # ended already
            return
        try:
            for name in await self._databases_of(self.number):
                await _drop(self._lock, name)
            # Last, owner last: a role that owns something cannot be dropped.
            for role in sorted(
                await marked_roles(self._lock, f"{PREFIX}{self.number}_"),
                key=lambda name: name == self.roles.owner,
            ):
                await drop_role(self._lock, role)
        finally:
            await self._lock.close()
            await self._engine.dispose()

    async def _databases_of(self, run: int | None) -> list[str]:
        names = await self._lock.scalars(
            text(
                "SELECT datname FROM pg_database "
                f"WHERE datname LIKE :pattern AND {_MARKED} ORDER BY datname"
            ),
            {"pattern": f"{PREFIX}{'' if run is None else run}%", "marks": _MARKS},
        )
        return [n for n in names if (m := _NAME.match(n)) and (run is None or int(m[1]) == run)]

    async def _drop_leftovers_of_dead_runs(self) -> None:
        for name in await self._databases_of(None):
            match = _NAME.match(name)
            assert match is not None
            run = int(match[1])
            if run == self.number:
                continue
            alive = not await self._lock.scalar(
                text("SELECT pg_try_advisory_lock(:class, :run)"),
                {"class": LOCK_CLASS, "run": run},
            )
            if alive:
                continue
            try:
                await _drop(self._lock, name)
            finally:
                await self._lock.execute(
                    text("SELECT pg_advisory_unlock(:class, :run)"),
                    {"class": LOCK_CLASS, "run": run},
                )
        await self._drop_roles_of_dead_runs()

    async def _drop_roles_of_dead_runs(self) -> None:
        # After their databases: a role that owns objects cannot be dropped.
        for name in await marked_roles(self._lock, PREFIX):
            match = _NAME.match(name)
            if match is None or int(match[1]) == self.number:
                continue
            run = {"class": LOCK_CLASS, "run": int(match[1])}
            if await self._lock.scalar(text("SELECT pg_try_advisory_lock(:class, :run)"), run):
                try:
                    await drop_role(self._lock, name)
                finally:
                    await self._lock.execute(text("SELECT pg_advisory_unlock(:class, :run)"), run)


async def drop_kept_templates(
    connection: AsyncConnection, keep: str | None = None, root: Path | None = None
) -> list[str]:
    """Drop this project's kept templates but `keep`, skipping any a live run still uses."""
    names = await connection.scalars(
        text(f"SELECT datname FROM pg_database WHERE starts_with(datname, :prefix) AND {_MARKED}"),
        {"prefix": KEPT_PREFIX, "marks": _MARKS},
    )
    dropped = []
    for name in names:
        if name == keep or not _is_kept_template_of(root, name):
            continue
        key = {"class": _TEMPLATE_LOCK_CLASS, "name": name}
        free = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:class, hashtext(:name))"), key
        )
        if not free:
            continue
        try:
            await _drop(connection, name)
            dropped.append(name)
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:class, hashtext(:name))"), key
            )
    # The role of a template dropped without it (by a harness from before roles, say).
    for role in await marked_roles(connection, kept_templates_prefix(root)):
        if (
            role != keep
            and _is_kept_template_of(root, role)
            and not await _exists(connection, role)
        ):
            await drop_role(connection, role)
    return dropped


async def _exists(connection: AsyncConnection, database: str) -> bool:
    found = await connection.scalar(
        text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
    )
    return found is not None
