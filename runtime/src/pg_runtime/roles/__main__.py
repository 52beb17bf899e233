"""`python -m pg_runtime.roles` (`make roles`): the app's and the reader's roles on your server.

Logs in as DIRECT_URL, the schema's owner: a login with CREATEROLE, as managed providers
give their owner login. Creates `<prefix>_app` and `<prefix>_reader` (prefix: the
database's name, or --prefix) with generated passwords, grants them their privileges, and
prints the DATABASE_URL and DATABASE_READER_URL to store as secrets: the passwords are
shown there and nowhere else. Run again, it only grants again (idempotent);
--new-passwords sets and prints new ones. An owner without CREATEROLE: create the two
roles by hand (docs/roles.md), then run this to grant them their privileges.
"""

import argparse
import asyncio
import sys

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from pg_runtime.engine import create_poll_engine
from pg_runtime.roles import Roles, create_login_role, grant_privileges, role_exists, set_password
from pg_runtime.roles.scram import new_password
from pg_runtime.settings import InvalidSettingsError, RuntimeSettings, load

_INSUFFICIENT_PRIVILEGE = "42501"
CANNOT_CREATE = (
    "DIRECT_URL's login cannot create roles (it lacks CREATEROLE): create {names} in your "
    "provider's console, or as a superuser, with the SQL in docs/roles.md, then run this again"
)


async def ensure_roles(
    settings: RuntimeSettings, url: URL, prefix: str | None, new_passwords: bool
) -> list[str]:
    """Create (or keep) the roles and grant their privileges; the lines to print."""
    engine = create_poll_engine(settings, url)
    lines: list[str] = []
    urls: list[str] = []
    try:
        async with engine.connect() as connection:
            owner = str(await connection.scalar(text("SELECT current_user")))
            roles = Roles.with_prefix(owner, prefix or str(url.database))
            for setting, name in (
                ("DATABASE_URL", roles.app),
                ("DATABASE_READER_URL", roles.reader),
            ):
                password = None
                if not await role_exists(connection, name):
                    password = new_password()
                    try:
                        await create_login_role(connection, name, password)
                    except DBAPIError as error:
                        if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                            raise
                        names = f"{roles.app} and {roles.reader}"
                        raise PermissionError(CANNOT_CREATE.format(names=names)) from None
                    lines.append(f"created role {name}")
                elif new_passwords:
                    password = new_password()
                    await set_password(connection, name, password)
                    lines.append(f"role {name} exists: new password")
                else:
                    lines.append(f"role {name} exists: password unchanged (--new-passwords)")
                urls.append(f"{setting}={_as_role(url, name, password)}")
            await grant_privileges(connection, roles)
    finally:
        await engine.dispose()
    lines.append(f"granted their privileges in {url.database}, and on what {owner} creates later")
    lines.append("store these as secrets (through PgBouncer: its host and port instead):")
    return lines + urls


def _as_role(url: URL, role: str, password: str | None) -> str:
    """`url` logged in as `role`; an unchanged password, unknown here, is left out."""
    # _replace, not set(): set() keeps the owner's password where it is given None.
    as_role = url._replace(drivername="postgresql", username=role, password=password)
    return as_role.render_as_string(hide_password=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pg_runtime.roles", description=__doc__)
    parser.add_argument("--prefix", help="role names' prefix (default: the database's name)")
    parser.add_argument("--new-passwords", action="store_true", help="set new passwords")
    args = parser.parse_args(argv)
    try:
        settings = load(RuntimeSettings)
    except InvalidSettingsError as exc:
        sys.exit(f"error: {exc}")
    if settings.direct_url is None:
        sys.exit("error: DIRECT_URL is not set: this logs in as the schema's owner, through it")
    try:
        lines = asyncio.run(
            ensure_roles(settings, settings.direct_url, args.prefix, args.new_passwords)
        )
    except PermissionError as exc:
        sys.exit(f"error: {exc}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
