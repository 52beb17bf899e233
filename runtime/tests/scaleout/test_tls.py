"""TLS that verifies: `sslmode=verify-full` with `sslrootcert`, against an endpoint that speaks
TLS with a CA and server certificate made here.

The embedded server is built without OpenSSL, so the endpoint is Debian's PgBouncer with
`client_tls_*` in front of the test server; required in CI, skipped elsewhere with the
install hint. The certificate names `localhost` only, so reaching it as 127.0.0.1 is a
host name mismatch.
"""

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from in_process import app_client, settings_for
from pg_harness.pgbouncer import PgBouncer, require_pgbouncer
from pg_harness.server import RunDatabases
from pg_runtime.database_url import to_asyncpg_url
from pg_runtime.settings import InvalidSettingsError
from probe.factory import create_app
from probe.settings import load_settings
from sqlalchemy.engine import URL

from scaleout.probes import operator_readiness

# Real processes and servers: a proof of the runtime's claims, run by `make check-runtime`.
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Certificates:
    ca: Path
    other_ca: Path  # trusted by nobody here
    server: tuple[Path, Path]  # certificate and key, for "localhost", signed by `ca`


def openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, certificate = folder / f"{name}.key", folder / f"{name}.crt"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", key, "-out", certificate, cwd=folder,
    )  # fmt: skip
    return certificate, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: `apt-get install openssl`")
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key = make_ca(folder, "test-ca")
    other_ca, _ = make_ca(folder, "other-ca")
    (folder / "san.ext").write_text("subjectAltName = DNS:localhost\n")
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr", cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=folder,
    )  # fmt: skip
    return Certificates(ca, other_ca, (folder / "server.crt", folder / "server.key"))


@pytest.fixture(scope="module")
def tls_port(run_databases: RunDatabases, certificates: Certificates) -> Iterator[int]:
    require_pgbouncer()
    bouncer = PgBouncer(
        run_databases.admin_url, users=run_databases.roles.passwords, tls=certificates.server
    )
    bouncer.start()
    try:
        yield bouncer.port
    finally:
        bouncer.stop()


def through_tls(database_url: URL, port: int, host: str, query: str) -> URL:
    plain = database_url.set(host=host, port=port).render_as_string(hide_password=False)
    return to_asyncpg_url(f"{plain}?{query}")


@dataclass
class ReadyProbe:
    """GET /health/ready's status of an app whose DATABASE_URL goes through the TLS
    endpoint, and the readiness details its operator gets."""

    database_url: URL
    port: int

    async def __call__(self, host: str, query: str) -> tuple[int, dict[str, object]]:
        url = through_tls(self.database_url, self.port, host, query)
        app = create_app(settings_for(url, db_behind_pgbouncer=True, direct_url=self.database_url))
        async with app_client(app) as client:
            response = await client.get("/health/ready")
            details = await operator_readiness()
        return response.status_code, details


@pytest.fixture
def ready(database_url: URL, tls_port: int) -> ReadyProbe:
    return ReadyProbe(database_url, tls_port)


async def test_verify_full_with_the_right_ca_connects(
    ready: ReadyProbe, certificates: Certificates
) -> None:
    status, body = await ready("localhost", f"sslmode=verify-full&sslrootcert={certificates.ca}")

    assert (status, body["status"]) == (200, "ready"), body


async def test_the_endpoint_refuses_clients_without_tls(ready: ReadyProbe) -> None:
    status, body = await ready("localhost", "sslmode=disable")

    assert (status, body["database"]) == (503, "unreachable")


@pytest.mark.parametrize(
    ("host", "mode", "trusted", "answer"),
    [
        ("localhost", "verify-full", "other_ca", "unable to get local issuer certificate"),
        ("127.0.0.1", "verify-full", "ca", "IP address mismatch"),
    ],
    ids=["wrong CA", "wrong host name"],
)
async def test_a_certificate_that_does_not_verify_makes_readiness_say_why(
    ready: ReadyProbe, certificates: Certificates, host: str, mode: str, trusted: str, answer: str
) -> None:
    ca = getattr(certificates, trusted)

    status, body = await ready(host, f"sslmode={mode}&sslrootcert={ca}")

    assert (status, body["database"]) == (503, "unreachable")
    reason = str(body["reason"])
    assert reason.startswith("TLS: SSLCertVerificationError")
    assert answer in reason
    assert "sslrootcert in DATABASE_URL" in reason


async def test_verify_ca_does_not_check_the_host_name(
    ready: ReadyProbe, certificates: Certificates
) -> None:
    status, body = await ready("127.0.0.1", f"sslmode=verify-ca&sslrootcert={certificates.ca}")

    assert status == 200, body


async def test_require_encrypts_but_checks_no_certificate(ready: ReadyProbe) -> None:
    status, body = await ready("127.0.0.1", "sslmode=require")

    assert status == 200, body


def test_a_missing_ca_file_stops_start_up_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://u:pw@localhost/app?sslmode=verify-full&sslrootcert={missing}"
    )

    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()

    assert "DATABASE_URL" in str(raised.value)
    assert "sslrootcert" in str(raised.value)
