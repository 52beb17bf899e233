"""The service's settings as the template ships them: every one documented in .env.example,
and the suite seeing no developer's.

How settings are read and checked (URLs, TLS, PgBouncer mode, secrets) is the runtime's,
proven on its probe app in runtime/tests/service/test_settings.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings
from orm.migrations import PROJECT_ROOT


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z_]+)=", (PROJECT_ROOT / ".env.example").read_text(), re.M)
    )

    assert {name.upper() for name in Settings.model_fields} <= documented


@pytest.mark.slow  # starts a process
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
