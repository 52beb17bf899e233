"""A Prometheus server of a test's own (Debian's package), scraping the targets it is given.

`Prometheus(["127.0.0.1:8000"]).start()` writes its configuration and storage into a
temporary folder, starts it on a free port, and waits until it is ready; `query()` asks
it for an instant vector; `stop()` ends it and removes the folder.
"""

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pg_harness.processes import free_port, require_installed

INSTALL_HINT = (
    "Prometheus is not installed: `apt-get install --no-install-recommends prometheus` "
    "(as .ci/run does)"
)


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def require_prometheus() -> None:
    """Skip the calling test where Prometheus is missing; fail instead if CI said it is not."""
    require_installed(prometheus_binary(), "PROMETHEUS_REQUIRED", INSTALL_HINT)


@dataclass
class Prometheus:
    targets: list[str]
    metrics_path: str = "/metrics"
    scrape_interval: str = "1s"
    url: str = ""
    _dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, seconds: float = 60) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self._dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        config = self._dir / "prometheus.yml"
        targets = ", ".join(f'"{target}"' for target in self.targets)
        config.write_text(
            f"global:\n  scrape_interval: {self.scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: app\n"
            f"    metrics_path: {self.metrics_path}\n"
            f"    static_configs:\n      - targets: [{targets}]\n"
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with (self._dir / "prometheus.log").open("w") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self._dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus was not ready in {seconds} s")

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector of `expression`: [{"metric": {labels}, "value": [t, "v"]}]."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def log(self) -> str:
        log = self._dir / "prometheus.log" if self._dir else None
        return log.read_text(errors="replace") if log and log.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
