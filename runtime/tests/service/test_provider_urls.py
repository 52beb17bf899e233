"""URLs in the forms providers hand out serve reads as well as writes: libpq's
target_session_attrs, one host or several (a failover URL, the first host down)."""

import logging
from urllib.parse import quote

import pytest
from in_process import app_client, settings_for
from pg_harness.processes import free_port
from pg_runtime.database_url import to_asyncpg_url
from pg_runtime.engine import create_app_engine
from pg_runtime.failures import DatabaseUnavailableError
from sqlalchemy.engine import URL


def libpq_url(database: URL, hosts: str, query: str) -> str:
    """`database`'s credentials and name at `hosts` (`h:p`, `h1:p1,h2:p2`), as libpq writes it."""
    password = f":{quote(database.password, safe='')}" if database.password else ""
    credentials = f"{quote(database.username or '', safe='')}{password}@"
    return f"postgresql://{credentials}{hosts}/{database.database}?{query}"


@pytest.mark.parametrize("attrs", ["read-write", "primary", "any"])
@pytest.mark.parametrize("hosts", ["one", "two, the first down"])
async def test_a_url_with_target_session_attrs_serves_orm_reads_and_writes(
    fresh_database: URL, attrs: str, hosts: str
) -> None:
    server = f"{fresh_database.host}:{fresh_database.port}"
    if hosts != "one":
        server = f"127.0.0.1:{free_port()},{server}"
    url = to_asyncpg_url(libpq_url(fresh_database, server, f"target_session_attrs={attrs}"))

    async with app_client(settings_for(url)) as client:
        created = await client.post("/probes", json={"name": "failover"})
        read = await client.get(f"/probes/{created.json()['id']}")
        listed = await client.get("/probes")  # the ORM's select
        renamed = await client.patch(f"/probes/{created.json()['id']}", json={"name": "moved"})
        read_again = await client.get(f"/probes/{created.json()['id']}/core")

    assert created.status_code == 201
    assert (read.status_code, read.json()["name"]) == (200, "failover")
    assert listed.status_code == 200
    assert [probe["name"] for probe in listed.json()] == ["failover"]
    assert renamed.status_code == 200
    assert (read_again.status_code, read_again.json()["name"]) == (200, "moved")


async def test_a_url_whose_hosts_are_all_down_answers_503(fresh_database: URL) -> None:
    down = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    url = to_asyncpg_url(libpq_url(fresh_database, down, "target_session_attrs=read-write"))

    async with app_client(settings_for(url, db_connect_timeout=1)) as client:
        read = await client.get("/probes/1")
        written = await client.post("/probes", json={"name": "nowhere"})

    assert (read.status_code, written.status_code) == (503, 503)


async def test_no_host_in_the_role_asked_for_is_the_database_unavailable(
    fresh_database: URL,
) -> None:
    # From the app, a failover under way: every host answers, none is a primary yet.
    server = f"{fresh_database.host}:{fresh_database.port}"
    url = to_asyncpg_url(libpq_url(fresh_database, server, "target_session_attrs=standby"))
    engine = create_app_engine(settings_for(fresh_database), url, read_only=True)
    try:
        with pytest.raises(DatabaseUnavailableError, match="TargetServerAttributeNotMatched"):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()


async def test_no_log_line_shows_a_password_of_the_url(
    fresh_database: URL, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "query=hunter2secret"
    up = f"{fresh_database.host}:{fresh_database.port}"
    down = f"127.0.0.1:{free_port()}"
    caplog.set_level(logging.DEBUG)

    for hosts in (up, down):  # served, then failing (503, logged)
        url = to_asyncpg_url(libpq_url(fresh_database, hosts, f"sslpassword={quote(secret)}"))
        async with app_client(settings_for(url, log_level="debug")) as client:
            await client.get("/probes")
            await client.post("/probes", json={"name": "logged"})

    assert "DatabaseUnavailableError" in caplog.text  # the failure was logged
    assert "hunter2secret" not in caplog.text
