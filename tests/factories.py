"""Rows for the tests, one factory per model: `UserFactory.build()` is a valid `User`.

polyfactory rather than factory_boy: its factories are typed (`build()` returns the model,
so mypy checks what a test does with the row), it fills each column it is not told about
from the column's type and length (a new column needs no edit here), and the Litestar
organisation maintains it; factory_boy's SQLAlchemy factory adds and commits through a
synchronous session, with no native support for an `AsyncSession`. The factories only
build: a test adds the rows to its `session` and commits, which releases a savepoint
(the `session` fixture of pg-harness). polyfactory's own hook, `__async_session__`, is set on the
factory class, where each test's session would have to be swapped in and out.
"""

from itertools import count

from polyfactory import Ignore, Use
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory

from orm.models import Role, User

_faker = SQLAlchemyFactory.__faker__
_serial = count(1)


class UserFactory(SQLAlchemyFactory[User]):
    # The database numbers rows and stamps times.
    __set_primary_key__ = False
    __set_relationships__ = False

    # Stored as the app stores emails (ASCII, case-folded), and distinct within a run.
    email = Use(lambda: f"user{next(_serial)}@example.org")
    name = Use(_faker.name)
    role = Role.member  # as the API creates every user; a test of an admin says so
    created_at = Ignore()
