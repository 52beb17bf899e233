"""Settings: the URLs users paste, and wrong ones stopping start-up without leaking secrets."""

import os
import re
import subprocess
import sys

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
