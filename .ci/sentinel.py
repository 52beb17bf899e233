"""CI's proof that the suite never touches a database named only in the developer's `.env`.

    python .ci/sentinel.py plant   # create a database, and a .env naming it
    python .ci/sentinel.py check   # after the suite: no session reached it, no table in it

`plant` refuses to overwrite an existing `.env`. `check` drops the database and the `.env`.
"""

import asyncio
import sys
from pathlib import Path

import asyncpg

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SENTINEL = "ci_sentinel_precious"
DOT_ENV = Path(__file__).resolve().parents[1] / ".env"


async def plant() -> None:
    if DOT_ENV.exists():
        sys.exit(f"{DOT_ENV} exists: not overwriting it")
    admin = await asyncpg.connect(ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {SENTINEL}")
        await admin.execute(f"CREATE DATABASE {SENTINEL}")
    finally:
        await admin.close()
    url = f"postgresql://postgres@127.0.0.1:5432/{SENTINEL}"
    DOT_ENV.write_text(f"DATABASE_URL={url}\nDIRECT_URL={url}\n")
    print(f"planted {DOT_ENV} naming {SENTINEL}")


async def check() -> None:
    admin = await asyncpg.connect(ADMIN)
    try:
        # Counted when a session ends; read from another database, so this check adds none.
        sessions = await admin.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", SENTINEL
        )
        sentinel = await asyncpg.connect(ADMIN.rsplit("/", 1)[0] + f"/{SENTINEL}")
        try:
            tables = await sentinel.fetch(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' AND c.relkind IN ('r', 'p', 'v', 'S')"
            )
        finally:
            await sentinel.close()
        await admin.execute(f"DROP DATABASE {SENTINEL} WITH (FORCE)")
    finally:
        await admin.close()
        DOT_ENV.unlink(missing_ok=True)
    if sessions or tables:
        sys.exit(
            f"the suite touched {SENTINEL}, named only in .env: {sessions} session(s), "
            f"relations {[row['relname'] for row in tables]}"
        )
    print(f"{SENTINEL}: no session, no table: the suite never read .env")


if __name__ == "__main__":
    asyncio.run({"plant": plant, "check": check}[sys.argv[1]]())
