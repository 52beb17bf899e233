"""These tests run on the project that hosts the harness: its settings must not reach them.

As the project's own conftest does for its tests: a developer's DATABASE_URL (in the
environment or in `.env`) may name a real database, and the processes these tests start
(the embedded wrapper, a copy's `make test`) read the project's settings.
"""

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    for name in ("DATABASE_URL", "DIRECT_URL"):
        os.environ.pop(name, None)
    os.environ["ENV_FILE"] = ""  # the template's settings then read no .env
