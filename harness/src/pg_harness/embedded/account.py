"""Which OS account runs the server: ourselves, or, when we are root, a system account of
this checkout's own.

PostgreSQL refuses to run as root. The shared `nobody` would do, but then every other
process running as `nobody` on the host (another project's embedded server, say) could read
our data directory and `superuser.password`. So root creates, once, a system account named
for this checkout (`pg-embedded-` and a hash of where pg_harness is installed: one per
checkout and virtual environment, the same in every process of it) and reuses it after.
It owns no home and cannot log in; it stays on the machine (`userdel` it by hand), as
do the data directories it owns. EMBEDDED_POSTGRES_USER names an existing account instead.
"""

import errno
import functools
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The pg_harness package's folder: in a checkout's harness/src, or in a virtual
# environment's site-packages. The account is then the same whichever project or folder a
# command of that checkout runs from (runtime/'s tests, the guard process, `make run`).
_INSTALLED_AT = Path(__file__).resolve().parent.parent


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
    return _system_account(os.environ.get("EMBEDDED_POSTGRES_USER") or account_name())


def account_name(installed_at: Path = _INSTALLED_AT) -> str:
    """The system account of the checkout that runs pg_harness from `installed_at`."""
    return f"pg-embedded-{hashlib.sha256(str(installed_at).encode()).hexdigest()[:10]}"


@functools.cache
def _system_account(name: str) -> Account:
    """The account `name`, created (a system account, no home, no login) if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        created = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment",
             "embedded PostgreSQL (pg_harness)", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        try:
            entry = pwd.getpwnam(name)  # ours, or another process's that raced us
        except KeyError:
            raise RuntimeError(
                f"the embedded server's account {name} could not be created "
                f"({created.stderr.strip() or f'useradd exited {created.returncode}'}): create "
                "it, or name an existing unprivileged account in EMBEDDED_POSTGRES_USER"
            ) from None
    return Account(entry.pw_uid, entry.pw_gid)


def owner_of(path: Path) -> Account:
    """The account owning `path`: for a data directory, the account its server runs as."""
    status = path.stat()
    return Account(status.st_uid, status.st_gid)


def write_secret(path: Path, content: str, account: Account) -> None:
    """Create `path` holding `content`, readable and writable by `account` alone from the
    moment it exists (never written first and narrowed after)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        if not account.is_self:
            os.fchown(descriptor, account.uid, account.gid)
        os.write(descriptor, content.encode())
    finally:
        os.close(descriptor)


def adopt(path: Path, account: Account) -> None:
    """Hand `path`, a data directory made by another account (`nobody`, before), to
    `account`, unless a server still runs there as that other account."""
    if account.is_self or not path.exists() or path.stat().st_uid == account.uid:
        return
    if _server_running(path):
        raise RuntimeError(
            f"a server runs in {path} as uid {path.stat().st_uid}, not as this checkout's "
            f"account: stop it (pg_ctl stop -D {path}) and start again"
        )
    for folder, folders, files in os.walk(path):  # links not followed: lchown the link
        for name in [folder, *(os.path.join(folder, each) for each in folders + files)]:
            os.lchown(name, account.uid, account.gid)


def _server_running(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, IndexError, ValueError):
        return False
    except OSError as error:
        return error.errno != errno.ESRCH
    return True


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
