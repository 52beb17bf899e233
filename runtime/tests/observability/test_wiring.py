"""The pieces around the app: text lines with the request id, traces asked for by
OTEL_* variables, and the folder that workers count in."""

import logging
import os
from pathlib import Path

import pytest
from pg_runtime.observability import metrics, request_id, tracing
from pg_runtime.observability.logs import RequestIdFilter, TextFormatter


def test_a_text_line_names_the_request_it_was_written_for() -> None:
    formatter = TextFormatter("%(levelname)s %(name)s: %(message)s")
    add_id = RequestIdFilter()

    def line() -> str:
        record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "stored %d", (3,), None)
        assert add_id.filter(record)
        return formatter.format(record)

    token = request_id.current.set("req-42")
    try:
        assert line() == "INFO app.x: stored 3 [request req-42]"
    finally:
        request_id.current.reset(token)
    assert line() == "INFO app.x: stored 3"  # outside any request


@pytest.mark.parametrize(
    ("environment", "traced"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_traces_are_on_only_when_the_otel_variables_ask(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], traced: bool
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    provider = tracing.provider_from_environment()
    assert (provider is not None) is traced
    if provider is not None:
        provider.shutdown()


def test_several_workers_count_in_a_folder_of_their_own_removed_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    with metrics.shared_across_workers(workers=1):
        assert metrics.MULTIPROC_DIR not in os.environ  # one process counts in memory
    with metrics.shared_across_workers(workers=2):
        folder = Path(os.environ[metrics.MULTIPROC_DIR])
        assert folder.is_dir()
    assert not folder.exists()
    assert metrics.MULTIPROC_DIR not in os.environ


def test_a_folder_the_environment_names_is_emptied_of_an_earlier_runs_numbers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_1234.db").write_bytes(b"earlier")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_DIR, str(tmp_path))
    with metrics.shared_across_workers(workers=2):
        assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.is_dir()  # the environment's folder stays


def test_a_dead_workers_live_gauges_are_dropped_and_its_counts_kept(tmp_path: Path) -> None:
    dead = 2**22 + 1  # above Linux's largest pid: no such process
    for name in (
        f"gauge_liveall_{dead}.db",
        f"counter_{dead}.db",
        f"gauge_liveall_{os.getpid()}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    metrics.forget_dead_workers(str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"gauge_liveall_{os.getpid()}.db"]
    )
