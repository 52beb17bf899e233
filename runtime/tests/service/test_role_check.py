"""Production start-up refuses an app role that can change the schema and a reader that
can write, in one line naming the fix; development, or DB_ROLE_CHECK=warn, only warns."""

import os
import subprocess
from functools import partial

import anyio
import pytest
from in_process import app_client
from pg_harness.processes import free_port
from pg_harness.server import RunDatabases
from pg_runtime.settings import InvalidSettingsError
from probe.settings import ProbeSettings
from served_probe import PROBE_COMMAND, probe_env
from sqlalchemy.engine import URL


def on(database_url: URL, **settings: object) -> ProbeSettings:
    given: dict[str, object] = {"database_url": database_url, **settings}
    return ProbeSettings(_env_file=None, **given)  # type: ignore[arg-type]  # pydantic checks


@pytest.fixture
def superuser_url(run_databases: RunDatabases, database_url: URL) -> URL:
    return run_databases.admin_url.set(database=database_url.database)


async def test_production_refuses_a_superuser_app_role(superuser_url: URL) -> None:
    with pytest.raises(InvalidSettingsError) as raised:
        async with app_client(on(superuser_url)):
            pass

    assert str(raised.value).startswith("DATABASE_URL's role is a superuser: ")
    assert "make roles" in str(raised.value)


async def test_production_refuses_the_schemas_owner_as_app_role(database_url: URL) -> None:
    with pytest.raises(InvalidSettingsError) as raised:
        async with app_client(on(database_url)):  # the run's owner
            pass

    assert str(raised.value).startswith("DATABASE_URL's role owns the schema")


async def test_production_refuses_a_reader_that_can_write(app_settings: ProbeSettings) -> None:
    assert app_settings.database_url is not None
    writer = app_settings.model_copy(update={"database_reader_url": app_settings.database_url})

    with pytest.raises(InvalidSettingsError) as raised:
        async with app_client(writer):
            pass

    assert str(raised.value).startswith("DATABASE_READER_URL's role may write rows")


@pytest.mark.parametrize(
    "settings",
    [{"environment": "development"}, {"db_role_check": "warn"}],
    ids=["development", "DB_ROLE_CHECK=warn"],
)
async def test_a_superuser_app_role_starts_with_a_warning_when_allowed(
    superuser_url: URL, settings: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    async with app_client(on(superuser_url, **settings)) as client:
        assert (await client.get("/health/ready")).status_code == 200

    assert "DATABASE_URL's role is a superuser" in caplog.text


@pytest.mark.slow
async def test_python_main_refuses_a_superuser_in_one_line(superuser_url: URL) -> None:
    env = probe_env(
        dict(os.environ)
        | {"DATABASE_URL": superuser_url.render_as_string(hide_password=False)}
        | {"PORT": str(free_port())}
    )

    result = await anyio.to_thread.run_sync(
        partial(subprocess.run, PROBE_COMMAND, env=env, capture_output=True, text=True, timeout=120)
    )

    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert last_line.startswith("error: DATABASE_URL's role is a superuser: ")
    assert "`make roles`" in last_line
    assert "Traceback" not in result.stderr
