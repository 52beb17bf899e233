"""Settings: the URLs users paste, and wrong ones stopping start-up without leaking secrets.

On the probe's settings class, which adds nothing to the runtime's."""

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from pg_runtime.database_url import driver_options, to_asyncpg_url
from pg_runtime.settings import InvalidSettingsError
from probe.settings import load_settings
from served_probe import probe_env


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:pw@db.example.com/app", "postgresql+asyncpg://u:pw@db.example.com/app"),
        (
            "postgresql://u:pw@db.example.com:6543/app",
            "postgresql+asyncpg://u:pw@db.example.com:6543/app",
        ),
        ("postgresql+asyncpg://u@localhost/app", "postgresql+asyncpg://u@localhost/app"),
        ("postgresql+psycopg://u@localhost/app", "postgresql+asyncpg://u@localhost/app"),
        (
            "postgres://u:pw@db.example.com/app?sslmode=require",
            "postgresql+asyncpg://u:pw@db.example.com/app?sslmode=require",
        ),
        ("postgresql://u:p%40ss@localhost/app", "postgresql+asyncpg://u:p%40ss@localhost/app"),
        (  # libpq's failover form: a host list
            "postgresql://u:pw@h1:5432,h2:5433/app?target_session_attrs=read-write",
            "postgresql+asyncpg://u:pw@/app?host=h1%3A5432&host=h2%3A5433"
            "&target_session_attrs=read-write",
        ),
        (
            "postgres://u@h1,[::1]:5433/app",
            "postgresql+asyncpg://u@/app?host=h1&host=%5B%3A%3A1%5D%3A5433",
        ),
    ],
)
def test_provider_urls_become_asyncpg_urls(
    given: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)

    url = load_settings().database_url

    assert url is not None
    assert url.render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("mysql://root:hunter2secret@localhost/app", "not PostgreSQL"),
        ("not a url hunter2secret", "is not a URL"),
        ("postgresql://u:hunter2secret@localhost", "names no database"),
        ("postgresql://u:hunter2secret@localhost/app?sslmode=sometimes", "sslmode must be one of"),
        ("postgresql://u:hunter2secret@localhost/app?frobnicate=1", "frobnicate is not supported"),
        (
            "postgresql://u:hunter2secret@ep-x.eu-central-1.aws.neon.tech/neondb"
            "?sslmode=require&channel_binding=require",
            "channel_binding=require cannot be honoured",
        ),
        (
            "postgresql://postgres.x:hunter2secret@aws-0-eu.pooler.supabase.com:6543/postgres"
            "?pgbouncer=true",
            "set DB_BEHIND_PGBOUNCER=true instead",
        ),
        (
            "postgresql://u:hunter2secret@db.rds.amazonaws.com/app"
            "?sslmode=verify-full&sslrootcert=/nonexistent/global-bundle.pem",
            "sslrootcert, sslcert or sslkey cannot be used (FileNotFoundError",
        ),
        ("postgresql://u:hunter2secret@h/app?options=statement_timeout", "-c name=value"),
        ("postgresql://u:hunter2secret@h/app?connect_timeout=soon", "connect_timeout must"),
        ("postgresql://u:hunter2secret@h/app?target_session_attrs=any-old", "must be one of"),
        ("postgresql://u:hunter2secret@h/app?password=a&password=b", "the password twice"),
        (
            "postgresql://u:hunter2secret@h/app?application_name=a&application_name=b",
            "gives parameter application_name twice",
        ),
        ("postgresql://u:hunter2secret@h/app?connect_timeout=0", "seconds above 0"),
        ("postgresql://u@h/app?sslpassword=hunter2secret&sslmode=sometimes", "sslmode must"),
        ("postgresql://u:hunter2secret@h:port/app", "is not a URL"),
        (
            "postgresql://u:hunter2secret@h1,h2/app?target_session_attrs=read-only",
            "target_session_attrs=read-only would connect writes to a standby",
        ),
        ("postgresql://u:hunter2secret@h/app?options=-c%20work_mem", "-c name=value"),
    ],
)
def test_wrong_url_names_the_setting_and_hides_the_password(
    given: str, complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)

    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()

    message = str(raised.value)
    assert "DATABASE_URL" in message
    assert complaint in message
    assert "hunter2secret" not in message


SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:pw@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=require",  # Neon
        "postgresql://postgres.x:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres",
        f"postgresql://u:pw@x.eu-west-1.rds.amazonaws.com:5432/app?sslmode=verify-full&sslrootcert={SYSTEM_CAS}",
        "postgres://u:pw@ec2-1-2-3-4.eu-west-1.compute.amazonaws.com:5432/d1?sslmode=require",
        "postgresql://u:pw@dpg-x.frankfurt-postgres.render.com/app_db?sslmode=require",
        "postgresql://postgres:pw@x.proxy.rlwy.net:41234/railway",
    ],
    ids=["Neon", "Supabase", "RDS", "Heroku", "Render", "Railway"],
)
def test_providers_urls_load(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", given)

    assert load_settings().database_url is not None


def test_libpq_parameters_become_asyncpg_arguments() -> None:
    url = to_asyncpg_url(
        "postgresql://u@h/app?application_name=billing&connect_timeout=3"
        "&options=-c%20search_path%3Dbilling%20-c%20work_mem%3D64MB"
        "&target_session_attrs=read-write&channel_binding=prefer&sslmode=verify-full"
    )

    options = driver_options(url)

    assert dict(options.url.query) == {}
    assert options.server_settings == {
        "application_name": "billing",
        "search_path": "billing",
        "work_mem": "64MB",
    }
    assert options.connect_args["timeout"] == 3
    assert options.connect_args["target_session_attrs"] == "read-write"
    tls = options.connect_args["ssl"]
    assert isinstance(tls, ssl.SSLContext)
    assert (tls.verify_mode, tls.check_hostname) == (ssl.CERT_REQUIRED, True)


@pytest.mark.parametrize(
    ("sslmode", "verify_mode", "check_hostname"),
    [
        ("require", ssl.CERT_NONE, False),
        ("verify-ca", ssl.CERT_REQUIRED, False),
        ("verify-full", ssl.CERT_REQUIRED, True),
    ],
)
def test_sslmode_checks_what_libpq_checks(
    sslmode: str, verify_mode: ssl.VerifyMode, check_hostname: bool
) -> None:
    tls = driver_options(to_asyncpg_url(f"postgresql://u@h/app?sslmode={sslmode}")).connect_args[
        "ssl"
    ]

    assert (tls.verify_mode, tls.check_hostname) == (verify_mode, check_hostname)


@pytest.mark.parametrize(("sslmode", "given"), [("disable", False), ("prefer", "prefer")])
def test_sslmode_that_checks_no_certificate_is_handed_to_asyncpg_as_is(
    sslmode: str, given: object
) -> None:
    options = driver_options(to_asyncpg_url(f"postgresql://u@h/app?sslmode={sslmode}"))

    assert options.connect_args["ssl"] == given


def test_pgbouncer_mode_refuses_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@pgbouncer:6432/app?options=-c%20a%3Db")
    monkeypatch.setenv("DIRECT_URL", "postgresql://u@db:5432/app")
    monkeypatch.setenv("DB_BEHIND_PGBOUNCER", "true")

    with pytest.raises(InvalidSettingsError, match="options parameter cannot pass through"):
        load_settings()


def test_settings_repr_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2secret@localhost/app")

    assert "hunter2secret" not in repr(load_settings())


@pytest.mark.slow  # starts a process
def test_starting_with_a_wrong_url_exits_with_a_message_and_no_traceback() -> None:
    env = os.environ | {"DATABASE_URL": "mysql://root:hunter2secret@localhost/app"}

    result = subprocess.run(
        [sys.executable, "-c", "import probe.main"],
        env=probe_env(env),
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 1
    assert "invalid setting DATABASE_URL" in result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:hunter2secret@db.example.com/app",
        "postgres://u@db.example.com/app?password=hunter2secret",  # libpq takes it there too
        "postgresql://u:hunter2%40secret@db.example.com/app",  # an @ in the password
        "postgresql://u:hunter2secret@db.example.com:6543/app?sslmode=require",
        "postgresql://u@db.example.com/app?sslmode=require&sslpassword=hunter2secret",
        "postgresql://u:hunter2secret@h1,h2:5433/app?sslpassword=hunter2secret",
    ],
    ids=["in the URL", "in the query", "with an @", "with sslmode", "sslpassword", "hosts"],
)
def test_the_password_is_never_printed(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    monkeypatch.setenv("DIRECT_URL", given)
    monkeypatch.setenv("DATABASE_READ_URL", f"{given},{given}")

    settings = load_settings()

    assert settings.database_url is not None
    assert "hunter2" in settings.database_url.render_as_string(hide_password=False)
    assert "hunter2" in settings.database_read_url[1].render_as_string(hide_password=False)
    for shown in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.database_url),
        str(settings.database_url),
        settings.database_url.render_as_string(),
        str(settings.database_url.set(port=6432)),  # a copy, as the tests' PgBouncer URL
        repr(settings.database_read_url),
    ):
        assert "hunter2" not in shown


def test_pgbouncer_mode_without_a_direct_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2secret@pgbouncer:6432/app")
    monkeypatch.setenv("DB_BEHIND_PGBOUNCER", "true")

    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()

    message = str(raised.value)
    assert "DB_BEHIND_PGBOUNCER=true needs DIRECT_URL" in message
    assert "hunter2secret" not in message


def test_a_dot_env_is_read_unless_env_file_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dot_env = tmp_path / "settings.env"
    dot_env.write_text("DATABASE_URL=postgresql://u@db.example.com/precious\n")

    monkeypatch.setenv("ENV_FILE", str(dot_env))
    named = load_settings().database_url
    monkeypatch.setenv("ENV_FILE", "")
    none = load_settings().database_url

    assert named is not None
    assert named.database == "precious"
    assert none is None


@pytest.mark.slow  # starts a process
def test_the_suite_and_its_subprocesses_see_no_developer_settings(tmp_path: Path) -> None:
    # A developer's .env would name their database: the suite set ENV_FILE empty and
    # dropped every setting from the environment (runtime/tests/conftest.py).
    probe = (
        "from probe.settings import load_settings; s = load_settings(); "
        "print(s.database_url, s.direct_url)"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=probe_env(dict(os.environ)),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert os.environ["ENV_FILE"] == ""
    assert "DATABASE_URL" not in os.environ
    assert "DIRECT_URL" not in os.environ
    assert result.stdout.split() == ["None", "None"], result.stderr


def test_read_urls_are_separated_by_commas_and_each_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@primary/app")
    monkeypatch.setenv(
        "DATABASE_READ_URL", "postgres://u:pw@standby-a/app, postgresql://u:pw@standby-b:6432/app"
    )

    urls = load_settings().database_read_url

    assert [(url.drivername, url.host, url.port) for url in urls] == [
        ("postgresql+asyncpg", "standby-a", None),
        ("postgresql+asyncpg", "standby-b", 6432),
    ]


def test_a_wrong_read_url_names_the_setting_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@primary/app")
    monkeypatch.setenv(
        "DATABASE_READ_URL", "postgresql://u:pw@standby/app,mysql://u:hunter2secret@standby/app"
    )

    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()

    assert "DATABASE_READ_URL" in str(raised.value)
    assert "hunter2secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("environment", "complaint"),
    [
        ({"DATABASE_READ_URL": "postgresql://u@standby/app"}, "DATABASE_READ_URL needs"),
        (
            {"DATABASE_URL": "postgresql://u@db/app", "DB_PGBOUNCER_PREPARED_STATEMENTS": "true"},
            "needs DB_BEHIND_PGBOUNCER",
        ),
        (
            {
                "DATABASE_URL": "postgresql://u@pgbouncer/app",
                "DIRECT_URL": "postgresql://u@db/app",
                "DB_BEHIND_PGBOUNCER": "true",
                "DATABASE_READ_URL": "postgresql://u@standby-pgbouncer/app?options=-c%20a%3Db",
            },
            "options parameter cannot pass through",
        ),
        ({"PORT": "9000", "METRICS_PORT": "9000"}, "METRICS_PORT must differ from PORT"),
    ],
    ids=[
        "read-url-without-primary",
        "prepared-statements-without-pgbouncer",
        "read-url-options",
        "metrics-on-the-apis-port",
    ],
)
def test_settings_that_cannot_work_together_are_refused(
    environment: dict[str, str], complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(InvalidSettingsError, match=complaint):
        load_settings()
