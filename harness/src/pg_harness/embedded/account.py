"""Which OS account runs the server: ourselves, or `nobody` when we are root.

PostgreSQL refuses to run as root. Rather than create a system user (as the wheel's own
start API does), root runs the binaries as `nobody`, which must then be able to reach
them and the data directory.
"""

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.getuid()

    def run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run `args` as this account, from a directory every account may enter."""
        drop: dict[str, object] = (
            {} if self.is_self else {"user": self.uid, "group": self.gid, "extra_groups": []}
        )
        return subprocess.run(args, cwd="/", text=True, **drop, **kwargs)  # type: ignore[call-overload, no-any-return]  # kwargs pass through to subprocess.run

    def can_reach(self, path: Path) -> bool:
        """Whether this account can walk to `path` and read it (runs `test` as the account)."""
        if self.is_self:
            return os.access(path, os.R_OK | os.X_OK)
        test = shutil.which("test") or "/usr/bin/test"
        return self.run([test, "-r", str(path), "-a", "-x", str(path)]).returncode == 0

    def own(self, path: Path) -> None:
        """Create `path` (mode 0700, as PostgreSQL demands) and hand it to this account."""
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
        if not self.is_self:
            os.chown(path, self.uid, self.gid)


def server_account() -> Account:
    if os.getuid() != 0:
        return Account(os.getuid(), os.getgid())
    nobody = pwd.getpwnam(os.environ.get("EMBEDDED_POSTGRES_USER", "nobody"))
    return Account(nobody.pw_uid, nobody.pw_gid)


def refuse_unless_ours(path: Path, setting: str) -> None:
    """Refuse `path` unless it is a real folder of this account's that no one else may write.

    Under /var/tmp, which every local account may write to, a folder or link already there
    could be anyone's: root would then run binaries, or open and chown files, through it.
    """
    status = path.lstat()
    if (
        not stat.S_ISDIR(status.st_mode)
        or status.st_uid != os.getuid()
        or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise RuntimeError(
            f"{path} is not a folder of this account's (a link, another user's, or writable "
            f"by others): remove it, or choose another place with {setting}"
        )
