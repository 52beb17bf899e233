"""The layers import downwards: `api/` → `orm/` → pg_runtime, `app/` wires them, and a
migration loads no web or metrics code."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each folder, and the project's folders it must not import from.
BELOW = {"orm": ("app", "api"), "api": ("app",), "alembic": ("api",)}
WEB_AND_METRICS = ("fastapi", "starlette", "uvicorn", "prometheus_client", "opentelemetry")


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("folder", sorted(BELOW))
def test_a_layer_imports_nothing_above_it(folder: str) -> None:
    upward = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in BELOW[folder]
    ]
    assert not upward, upward


def test_a_migration_loads_no_web_or_metrics_code() -> None:
    probe = (
        "import sys; from alembic import command; from orm.migrations import alembic_config; "
        "command.upgrade(alembic_config(), 'head', sql=True); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_AND_METRICS!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]
