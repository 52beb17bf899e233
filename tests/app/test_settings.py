"""Settings: the URLs users paste, and wrong ones stopping start-up without leaking secrets."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import InvalidSettingsError, Settings, load_settings
from orm.migrations import PROJECT_ROOT


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
            "postgresql+asyncpg://u:pw@db.example.com/app?ssl=require",
        ),
        ("postgresql://u:p%40ss@localhost/app", "postgresql+asyncpg://u:p%40ss@localhost/app"),
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


def test_settings_repr_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2secret@localhost/app")

    assert "hunter2secret" not in repr(load_settings())


def test_starting_with_a_wrong_url_exits_with_a_message_and_no_traceback() -> None:
    env = os.environ | {"DATABASE_URL": "mysql://root:hunter2secret@localhost/app"}

    result = subprocess.run(
        [sys.executable, "-c", "import main"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 1
    assert "invalid setting DATABASE_URL" in result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z_]+)=", (PROJECT_ROOT / ".env.example").read_text(), re.M)
    )

    assert {name.upper() for name in Settings.model_fields} <= documented


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:hunter2secret@db.example.com/app",
        "postgres://u@db.example.com/app?password=hunter2secret",  # libpq takes it there too
        "postgresql://u:hunter2%40secret@db.example.com/app",  # an @ in the password
        "postgresql://u:hunter2secret@db.example.com:6543/app?sslmode=require",
    ],
    ids=["in the URL", "in the query", "with an @", "with sslmode"],
)
def test_the_password_is_never_printed(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    monkeypatch.setenv("DIRECT_URL", given)

    settings = load_settings()

    assert settings.database_url is not None
    assert "hunter2" in settings.database_url.render_as_string(hide_password=False)
    for shown in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.database_url),
        str(settings.database_url),
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


def test_the_suite_and_its_subprocesses_see_no_developer_settings(tmp_path: Path) -> None:
    # A developer's .env in the project would name their database: the suite set ENV_FILE
    # empty and dropped every setting from the environment (tests/conftest.py).
    probe = (
        "from app.settings import load_settings; s = load_settings(); "
        "print(s.database_url, s.direct_url)"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )

    assert os.environ["ENV_FILE"] == ""
    assert "DATABASE_URL" not in os.environ
    assert "DIRECT_URL" not in os.environ
    assert result.stdout.split() == ["None", "None"], result.stderr
