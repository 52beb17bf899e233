"""`make clean-db`: remove what the test harness keeps between runs, and nothing else.

That is this project's kept migrated templates on TEST_DATABASE_URL's server (if set; ones
a running test run still uses are left alone, and only databases the harness marked),
and the embedded test server's data directory, if the harness marked it as its own. The
next test run rebuilds the template.
"""

import os
import shutil
import sys

import anyio

from pg_harness.databases import admin_engine, drop_kept_templates
from pg_harness.embedded.server import EmbeddedPostgres
from pg_harness.server import DATA_DIR_MARK, kept_test_data_dir
from pg_harness.urls import asyncpg_url


async def drop_templates_on_test_server(url: str) -> None:
    engine = admin_engine(asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            dropped = await drop_kept_templates(connection)
    finally:
        await engine.dispose()
    for name in dropped:
        print(f"dropped database {name}")


def remove_embedded_data() -> None:
    data_dir = kept_test_data_dir()
    if not data_dir.exists():
        return
    if not (data_dir / DATA_DIR_MARK).exists():
        # TEST_PGDATA may name any folder: remove only one the harness made.
        sys.exit(f"{data_dir} was not made by the test harness: not removing it")
    if EmbeddedPostgres(data_dir).running_port() is not None:
        sys.exit(f"a test server is running on {data_dir}: let its test run end first")
    shutil.rmtree(data_dir)
    print(f"removed {data_dir}")


def main() -> None:
    if url := os.environ.get("TEST_DATABASE_URL"):
        anyio.run(drop_templates_on_test_server, url)
    remove_embedded_data()


if __name__ == "__main__":
    main()
