"""The PostgreSQL URLs that hosting providers hand out, checked and turned into asyncpg's terms.

A URL keeps libpq's parameter names (what a provider's dashboard shows); `driver_options()`
translates them for asyncpg, which takes none of them as they are: an unknown query key
reaching `asyncpg.connect` would fail every connection with a TypeError. So each libpq
parameter is honoured, or refused by name when the settings load; none is dropped.
"""

import re
import shlex
import ssl
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pg_runtime.masked_url import masked

_EXAMPLE = "postgresql://user:password@host:5432/dbname"
_POSTGRES_SCHEMES = {
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg",
    "postgresql+psycopg2",
}
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
_TARGET_SESSION_ATTRS = {"any", "primary", "standby", "prefer-standby", "read-write", "read-only"}
# What each accepted parameter is for; `host` and `port` (several hosts, a Unix socket
# folder) are read by SQLAlchemy's dialect itself.
HONOURED = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "application_name",
    "connect_timeout",
    "options",
    "target_session_attrs",
    "channel_binding",
    "host",
    "port",
)
# Parameters that cannot be honoured, and what to do instead.
_REFUSED = {
    "pgbouncer": "is Prisma's; set DB_BEHIND_PGBOUNCER=true instead",
    "prepared_statement_cache_size": "is set by DB_BEHIND_PGBOUNCER",
    "statement_cache_size": "is set by DB_BEHIND_PGBOUNCER",
    "ssl": "is asyncpg's; use libpq's sslmode",
}


@dataclass(frozen=True)
class DriverOptions:
    """What asyncpg is given for a URL: the URL without its query, and keyword arguments."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    server_settings: dict[str, str] = field(default_factory=dict)


def to_asyncpg_url(raw: str | URL) -> URL:
    """Parse `raw`, check its parameters, and point it at the asyncpg driver.

    Error messages never repeat the URL: it may hold a password. The URL returned (a
    MaskedURL) masks every password it holds when shown (pg_runtime/masked_url.py).
    """
    try:
        url = make_url(_hosts_in_query(raw) if isinstance(raw, str) else raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(f"is not a URL; expected {_EXAMPLE}") from None
    if url.drivername not in _POSTGRES_SCHEMES:
        raise ValueError(f"scheme {url.drivername!r} is not PostgreSQL; expected {_EXAMPLE}")
    if not url.database:
        raise ValueError(f"names no database; expected {_EXAMPLE}")
    query = dict(url.query)
    # libpq takes the password in the query too; in its place it is masked like any other.
    if (password := query.pop("password", None)) is not None:
        if not isinstance(password, str):
            raise ValueError("gives the password twice in its query")
        url = url.set(password=password)
    for name, value in query.items():
        if name in _REFUSED:
            raise ValueError(f"parameter {name} {_REFUSED[name]}")
        if name not in HONOURED:
            raise ValueError(f"parameter {name} is not supported; supported: {', '.join(HONOURED)}")
        if not isinstance(value, str) and name not in ("host", "port"):
            raise ValueError(f"gives parameter {name} twice")
    url = masked(url.set(drivername="postgresql+asyncpg", query=query))
    driver_options(url)  # a wrong value, or a certificate file that cannot be read, fails here
    return url


# scheme://[userinfo@]hosts[/database][?query]: userinfo ends at its last @ (the password's
# own are percent-encoded), as SQLAlchemy reads it.
_NETLOC = re.compile(
    r"^(?P<scheme>[^:/?#]+://)(?P<userinfo>[^/?#]*@)?(?P<hosts>[^/?#]*)(?P<rest>.*)$"
)


def _hosts_in_query(raw: str) -> str:
    """libpq's multi-host form `h1:p1,h2:p2` (failover URLs) in SQLAlchemy's terms:
    `?host=h1:p1&host=h2:p2`, which its asyncpg dialect hands to asyncpg as a host list."""
    parts = _NETLOC.match(raw)
    if parts is None or "," not in parts["hosts"]:
        return raw
    hosts = "&".join(f"host={host}" for host in parts["hosts"].split(","))
    path, question, query = parts["rest"].partition("?")
    query = f"{hosts}&{query}" if question and query else hosts
    return f"{parts['scheme']}{parts['userinfo'] or ''}{path or '/'}?{query}"


def driver_options(url: URL) -> DriverOptions:
    """asyncpg's terms for `url`'s libpq parameters."""
    query = {name: value for name, value in url.query.items() if isinstance(value, str)}
    connect_args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    if "application_name" in query:
        server_settings["application_name"] = query["application_name"]
    if "options" in query:
        server_settings |= _server_options(query["options"])
    if "connect_timeout" in query:
        connect_args["timeout"] = _seconds(query["connect_timeout"])
    if "target_session_attrs" in query:
        if query["target_session_attrs"] not in _TARGET_SESSION_ATTRS:
            raise ValueError(f"target_session_attrs must be one of {sorted(_TARGET_SESSION_ATTRS)}")
        connect_args["target_session_attrs"] = query["target_session_attrs"]
    if query.get("channel_binding", "prefer") not in ("disable", "prefer"):
        raise ValueError(
            "channel_binding=require cannot be honoured: asyncpg has no channel binding. "
            "Remove it (Neon's URLs include it); the password exchange is still SCRAM, and "
            "sslmode=verify-full checks the server's certificate instead"
        )
    tls = _tls(query)
    if tls is not None:
        connect_args["ssl"] = tls
    kept = {name: value for name, value in url.query.items() if name in ("host", "port")}
    return DriverOptions(url.set(query=kept), connect_args, server_settings)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("connect_timeout must be a number of seconds") from None
    if seconds <= 0:
        raise ValueError("connect_timeout must be a number of seconds above 0")
    return seconds


def _server_options(options: str) -> dict[str, str]:
    """libpq's `options=-c name=value -c ...` as server settings."""
    words = shlex.split(options.replace("\\ ", "\0"))
    settings: dict[str, str] = {}
    while words:
        word = words.pop(0)
        if word == "-c" and words:
            word = words.pop(0)
        elif word.startswith("-c") or word.startswith("--"):
            word = word[2:]
        else:
            raise ValueError("options must be `-c name=value` pairs")
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise ValueError("options must be `-c name=value` pairs")
        settings[name.replace("-", "_")] = value.replace("\0", " ")
    return settings


def _tls(query: dict[str, str]) -> ssl.SSLContext | str | bool | None:
    """libpq's sslmode and certificate files as asyncpg's `ssl` argument."""
    rootcert = query.get("sslrootcert")
    mode = query.get("sslmode") or ("verify-full" if rootcert == "system" else None)
    if mode is None:
        return None  # asyncpg's default, as libpq's: prefer
    if mode not in _SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(sorted(_SSL_MODES))}")
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode  # no certificate is checked in these modes, by libpq either
    try:
        if rootcert and rootcert != "system":
            context = ssl.create_default_context(cafile=rootcert)  # this CA only
        else:
            context = ssl.create_default_context()  # the system's CAs
        if mode == "require" and not rootcert:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # encrypted, but anyone may answer
        elif mode in ("require", "verify-ca"):
            context.check_hostname = False  # a CA given: libpq's require checks it too
        if "sslcert" in query:
            context.load_cert_chain(
                query["sslcert"], query.get("sslkey"), password=query.get("sslpassword")
            )
    except OSError as error:  # ssl.SSLError is one too
        why = getattr(error, "reason", None) or error.strerror
        raise ValueError(
            f"sslrootcert, sslcert or sslkey cannot be used ({type(error).__name__}: {why})"
        ) from None
    return context


def milliseconds(seconds: float) -> str:
    """A duration as a server setting takes it."""
    return str(round(seconds * 1000))
