"""Whether the embedded PostgreSQL can run a streaming standby of a given server.

The run's own embedded server always can. A server that TEST_DATABASE_URL names may not:
physical replication needs the same major version, and the standby's copy is made and
run here, with the URL's credentials.
"""

import functools
import ipaddress
import re

import asyncpg
from sqlalchemy.engine import URL

from pg_harness.embedded.account import server_account
from pg_harness.embedded.binaries import bin_dir
from pg_harness.urls import asyncpg_connect_args

# Superuser-only settings: no row for anyone else.
_WHERE_CONFIG_LIVES = """
SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
       (SELECT setting FROM pg_settings WHERE name = 'config_file'),
       (SELECT setting FROM pg_settings WHERE name = 'data_directory')
"""


@functools.cache
def embedded_major_version() -> int:
    account = server_account()
    shown = account.run(
        [str(bin_dir(account) / "pg_basebackup"), "--version"], capture_output=True, check=True
    ).stdout  # "pg_basebackup (PostgreSQL) 18.6"
    found = re.match(r"\d+", shown.split()[-1])
    assert found is not None, f"no version in {shown!r}"
    return int(found.group())


async def unfollowable_reason(primary_url: URL) -> str | None:
    """Why no embedded standby can follow the server at `primary_url`, or None: the skip
    reason of a test that needs one."""
    if not _is_loopback(primary_url.host):
        where = primary_url.host or "a Unix socket"
        return _needs(f"the embedded standby can follow a server on 127.0.0.1, not on {where}")
    try:
        server = await asyncpg.connect(**asyncpg_connect_args(primary_url))
    except asyncpg.InvalidAuthorizationSpecificationError:
        if primary_url.password:
            raise
        return _needs("the given server's URL has no password, and the standby logs in with it")
    try:
        # Read first and alone: of a server of another version, nothing else is asked.
        given = int(await server.fetchval("SHOW server_version_num")) // 10000
        ours = embedded_major_version()
        if given != ours:
            return _needs(
                f"the embedded PostgreSQL {ours} cannot follow the given server's "
                f"PostgreSQL {given}"
            )
        if not primary_url.password:
            return _needs("the given server's URL has no password, and the standby logs in with it")
        superuser, config_file, data_directory = await server.fetchrow(_WHERE_CONFIG_LIVES)
    finally:
        await server.close()
    if not superuser:
        return _needs("the given server's user is not a superuser, who copies and replays it")
    if not config_file.startswith(f"{data_directory}/"):
        # A Debian cluster's postgresql.conf is in /etc: the copy could not start.
        return _needs(
            f"the given server's configuration ({config_file}) is outside its data folder, "
            "which is all pg_basebackup copies"
        )
    return None


def _needs(why: str) -> str:
    return (
        f"needs a standby: {why} (TEST_DATABASE_URL); run without TEST_DATABASE_URL to include it"
    )


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name
        return False
