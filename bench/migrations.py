"""What the per-revision migration check costs, and how it grows with the number of revisions.

pg_harness.migrations.checks.check_revision runs four Alembic commands and four catalog
snapshots for each revision; the stairway test runs it for every revision, so its cost
decides how long the migration tests take once the history is long. Measured here on the
project's revisions plus N trivial generated ones on top of the head (each creates a
table bench_t<i> with one index, its downgrade drops them), walked from base to head on
an empty database, as tests/migrations/test_broken_revisions.py walks them:
- per run: the total, and min / median / max of one revision's check, in milliseconds;
- the median of the first 10 generated revisions against that of the last 10: how a
  check's cost moves along the history. The revision files are read once per walk
  (orm.migrations), so history length adds nothing per revision; what the last 10 pay
  more is the catalog snapshot of a schema that has grown by 40 tables meanwhile.
- over the runs: min and median of the per-revision median.

The server is chosen as the tests choose it: TEST_DATABASE_URL if set (there only
databases named bench_migrations_<pid>_* are created, and all are dropped at the end),
else a throw-away embedded server. Run from the project root:

    .venv/bin/python -m bench.migrations [--revisions 50] [--repeat N]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from pg_harness.databases import create_database, database_names, drop_database
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.migrations.checks import check_revision
from pg_runtime.database_url import to_asyncpg_url
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from orm.migrations import PROJECT_ROOT, alembic_config

PREFIX = f"bench_migrations_{os.getpid()}_"
EDGE = 10  # generated revisions compared at each end of the history

# Written out as alembic/script.py.mako renders a revision, typed the same way.
_REVISION = '''"""create bench_t{i}

Revision ID: {revision}
Revises: {down_revision}
Create Date: 2099-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = {revision!r}
down_revision: str | None = {down_revision!r}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bench_t{i}",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label", sa.Text(), nullable=False),
    )
    op.create_index("ix_bench_t{i}_label", "bench_t{i}", ["label"])


def downgrade() -> None:
    op.drop_index("ix_bench_t{i}_label", table_name="bench_t{i}")
    op.drop_table("bench_t{i}")
'''


def script_directory(tmp: Path, count: int) -> tuple[Config, list[str]]:
    """A copy of the project's Alembic set-up with `count` revisions chained on the head.

    Returns the config that points at the copy, and the generated revision ids in order.
    """
    shutil.copytree(
        PROJECT_ROOT / "alembic", tmp / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(PROJECT_ROOT / "alembic.ini", tmp / "alembic.ini")
    config = alembic_config()
    config.set_main_option("script_location", str(tmp / "alembic"))
    down_revision = ScriptDirectory.from_config(config).get_current_head()
    generated = []
    for i in range(1, count + 1):
        # 12 hex digits like Alembic's own ids, and recognisable as ours.
        revision = f"bec4{i:08x}"
        (tmp / "alembic" / "versions" / f"{revision}_create_bench_t{i}.py").write_text(
            _REVISION.format(i=i, revision=revision, down_revision=down_revision)
        )
        generated.append(revision)
        down_revision = revision
    assert ScriptDirectory.from_config(config).get_current_head() == down_revision
    return config, generated


async def walk(database: URL, config: Config) -> dict[str, float]:
    """Milliseconds of check_revision for each revision, base to head, by revision id."""
    times = {}
    engine = create_async_engine(database, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            # Outside the timing: ScriptDirectory reads the revision files once here.
            revisions = reversed(list(ScriptDirectory.from_config(config).walk_revisions()))
            for revision in revisions:
                start = time.perf_counter()
                await check_revision(connection, revision, config)
                times[revision.revision] = (time.perf_counter() - start) * 1000
    finally:
        await engine.dispose()
    return times


async def drop_ours(admin_url: URL) -> None:
    for name in await database_names(admin_url, PREFIX):
        await drop_database(admin_url, name)


def report_run(number: int, times: dict[str, float], total: float, generated: list[str]) -> None:
    each = list(times.values())
    first = statistics.median(times[r] for r in generated[:EDGE])
    last = statistics.median(times[r] for r in generated[-EDGE:])
    print(
        f"run {number}: {len(each)} revisions ({len(generated)} generated) in {total:.2f} s;"
        f" per revision min {min(each):.1f} ms, median {statistics.median(each):.1f} ms,"
        f" max {max(each):.1f} ms; median of first {EDGE} generated {first:.1f} ms,"
        f" of last {EDGE} {last:.1f} ms"
    )


async def run(admin_url: URL, config: Config, generated: list[str], repeat: int) -> None:
    medians = []
    try:
        for number in range(1, repeat + 1):
            # A fresh empty database per run: every run walks the same history from base.
            name = f"{PREFIX}{number}"
            database = await create_database(admin_url, name)
            try:
                start = time.perf_counter()
                times = await walk(database, config)
                total = time.perf_counter() - start
            finally:
                await drop_database(admin_url, name)
            report_run(number, times, total, generated)
            medians.append(statistics.median(times.values()))
    finally:
        # Also after a failure or Ctrl-C: a shared server must not keep our databases.
        await drop_ours(admin_url)
    print(
        f"per-revision median over {repeat} runs: min {min(medians):.1f} ms,"
        f" median {statistics.median(medians):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=50, help="generated (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="walks, base to head (default 3)")
    args = parser.parse_args()
    if args.revisions < EDGE or args.repeat < 1:
        parser.error(f"--revisions must be at least {EDGE}, --repeat at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-migrations-") as tmp:
        config, generated = script_directory(Path(tmp), args.revisions)
        given = os.environ.get("TEST_DATABASE_URL")
        if given:
            url = to_asyncpg_url(given)
            print(f"server: TEST_DATABASE_URL ({url.host}:{url.port}), cpus: {os.cpu_count()}")
            asyncio.run(run(url, config, generated, args.repeat))
            return
        data = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
        embedded = EmbeddedPostgres(data, throwaway=True)
        try:
            url = embedded.start()
            print(f"server: embedded, throw-away, cpus: {os.cpu_count()}")
            asyncio.run(run(url, config, generated, args.repeat))
        finally:
            embedded.stop()


if __name__ == "__main__":
    main()
