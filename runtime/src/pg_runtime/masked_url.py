"""A database URL that hides every password it holds, the query's as well as its own.

SQLAlchemy's URL masks its password when shown, but prints the query as given, where
libpq's `sslpassword` (the client key's passphrase) sits. Every way a URL is shown
(repr, str, `render_as_string()`, and through it the settings' repr and dumps) goes
through `render_as_string`; only `render_as_string(hide_password=False)`, which a caller
asks for to hand the URL on, shows them.
"""

from urllib.parse import quote_plus

from sqlalchemy.engine import URL

MASK = "***"


def is_secret(parameter: str) -> bool:
    """Whether a query parameter holds a password (libpq's `sslpassword`, or any other)."""
    return "password" in parameter.lower()


class MaskedURL(URL):
    """A URL whose rendering, unless told otherwise, masks password-like query parameters.

    `set()`, `update_query_dict()` and SQLAlchemy's other copies keep this class.
    """

    def render_as_string(self, hide_password: bool = True) -> str:
        if not hide_password or not any(is_secret(name) for name in self.query):
            return super().render_as_string(hide_password)
        masked = {name: MASK if is_secret(name) else value for name, value in self.query.items()}
        shown = URL.render_as_string(self.set(query=masked), hide_password=True)
        return shown.replace(quote_plus(MASK), MASK)  # as the password's mask reads


def masked(url: URL) -> MaskedURL:
    """`url` as a `MaskedURL`."""
    # The fields as they are: `url` was checked when it was made.
    return MaskedURL(
        url.drivername, url.username, url.password, url.host, url.port, url.database, url.query
    )
