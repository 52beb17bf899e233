"""pg-harness: real PostgreSQL for a SQLAlchemy + Alembic project's development and tests.

An embedded server for `make run`, migrated test databases kept between runs, a rolled-back
transaction per test, migration checks, and helpers that serve the app or a PgBouncer for
tests of production claims. README.md says how a project uses it.
"""

__version__ = "0.1.0"
