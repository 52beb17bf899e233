"""The app's role (DATABASE_URL) cannot change the schema (the whole suite shows it writes rows)."""

import pytest
from pg_runtime.engine import create_app_engine
from probe.settings import ProbeSettings
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE probe ADD COLUMN intruder int",
        "DROP TABLE probe_item",
        "TRUNCATE probe_item",
        "CREATE INDEX ix_intruder ON probe (name)",
        "CREATE SCHEMA intruder",
    ],
)
async def test_the_app_role_cannot_change_the_schema(
    app_settings: ProbeSettings, statement: str
) -> None:
    assert app_settings.database_url is not None
    engine = create_app_engine(app_settings, app_settings.database_url)
    try:
        # In a transaction rolled back, should the statement pass after all.
        async with engine.connect() as connection, connection.begin() as transaction:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text(statement))
            await transaction.rollback()
    finally:
        await engine.dispose()

    assert getattr(raised.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
