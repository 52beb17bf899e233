"""Which PgBouncer the harness starts decides how the app may talk to it."""

import stat
from pathlib import Path

import pytest
from pg_harness.pgbouncer import (
    TRACKS_PREPARED_STATEMENTS_FROM,
    pgbouncer_binary,
    pgbouncer_version,
)


@pytest.mark.parametrize(
    ("shown", "version"),
    [
        ("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n", (1, 18)),
        ("PgBouncer 1.23.1\nlibevent 2.1.12-stable\nadns: c-ares 1.34\n", (1, 23)),
        ("pgbouncer version 1.21.0\n", (1, 21)),
    ],
)
def test_the_version_is_read_from_what_it_prints(
    shown: str, version: tuple[int, int], tmp_path: Path
) -> None:
    binary = tmp_path / "pgbouncer"
    binary.write_text(f"#!/bin/sh\nprintf '{shown}'\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)

    assert pgbouncer_version(str(binary)) == version


def test_the_installed_pgbouncer_reports_a_version() -> None:
    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip("PgBouncer is not installed")

    major, minor = pgbouncer_version(binary)

    assert major >= 1
    print(
        f"\nPgBouncer {major}.{minor}: tracks prepared statements: "
        f"{(major, minor) >= TRACKS_PREPARED_STATEMENTS_FROM}"
    )
