"""docs/operating.md's Prometheus configuration and alert rules are valid, and the alerts fire."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pg_harness.prometheus import require_prometheus

# The repository's operator docs, which show Prometheus the runtime's metrics.
OPERATING = Path(__file__).resolve().parents[3] / "docs" / "operating.md"


def documented_yaml(first_line: str) -> str:
    """The YAML block of docs/operating.md that begins with `first_line`, unindented."""
    for block in re.findall(r"```yaml\n(.*?)```", OPERATING.read_text(), flags=re.S):
        lines = block.splitlines()
        indent = len(lines[0]) - len(lines[0].lstrip())
        text = "\n".join(line[indent:] for line in lines) + "\n"
        if text.startswith(first_line):
            return text
    raise AssertionError(f"no YAML block starting {first_line!r} in {OPERATING}")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None  # Debian's prometheus package ships it
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def documented_files(tmp_path: Path) -> Path:
    require_prometheus()
    (tmp_path / "prometheus.yml").write_text(documented_yaml("# prometheus.yml"))
    (tmp_path / "alerts.yml").write_text(documented_yaml("# alerts.yml"))
    return tmp_path


def test_the_scrape_configuration_and_its_rules_load(documented_files: Path) -> None:
    checked = promtool("check", "config", "prometheus.yml", cwd=documented_files)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Ten minutes of two series per alert: one instance in trouble, one healthy.
RULE_TESTS = """
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'db_pool_checked_out{instance="a", pool="read", pid="1"}'
        values: "10x10"
      - series: 'db_pool_size{instance="a", pool="read", pid="1"}'
        values: "10x10"
      - series: 'db_pool_checked_out{instance="b", pool="read", pid="2"}'
        values: "2x10"
      - series: 'db_pool_size{instance="b", pool="read", pid="2"}'
        values: "10x10"
      - series: 'http_request_duration_seconds_count{instance="a", status="5xx"}'
        values: "0+10x10"
      - series: 'http_request_duration_seconds_count{instance="a", status="2xx"}'
        values: "0+100x10"
      - series: 'http_request_duration_seconds_count{instance="b", status="2xx"}'
        values: "0+100x10"
    alert_rule_test:
      - eval_time: 10m
        alertname: DatabasePoolSaturated
        exp_alerts:
          - exp_labels: {instance: a, pool: read, severity: page}
            exp_annotations: {summary: "a: the read pool is nearly always in use"}
      - eval_time: 10m
        alertname: ServerErrors
        exp_alerts:
          - exp_labels: {instance: a, severity: page}
            exp_annotations: {summary: "a: more than 1 % of requests answered 5xx"}
"""


def test_the_alerts_fire_for_the_instance_in_trouble_only(documented_files: Path) -> None:
    (documented_files / "alerts_test.yml").write_text(RULE_TESTS)
    tested = promtool("test", "rules", "alerts_test.yml", cwd=documented_files)
    assert tested.returncode == 0, tested.stdout + tested.stderr
