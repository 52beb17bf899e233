"""Turn the PostgreSQL URLs that hosting providers hand out into one SQLAlchemy + asyncpg accept."""

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_EXAMPLE = "postgresql://user:password@host:5432/dbname"
_POSTGRES_SCHEMES = {
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg",
    "postgresql+psycopg2",
}
# libpq's sslmode values; asyncpg takes the same words, but as `ssl=`.
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


def to_asyncpg_url(raw: str | URL) -> URL:
    """Parse `raw` and point it at the asyncpg driver.

    Error messages never repeat the input: it may hold a password.
    """
    try:
        url = make_url(raw)
    except ArgumentError:
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
    sslmode = query.pop("sslmode", None)
    if sslmode is not None:
        if sslmode not in _SSL_MODES:
            raise ValueError(f"sslmode must be one of {', '.join(sorted(_SSL_MODES))}")
        query["ssl"] = sslmode
    return url.set(drivername="postgresql+asyncpg", query=query)


def with_database(url: URL, database: str) -> URL:
    """The same server and credentials, another database."""
    return url.set(database=database)
