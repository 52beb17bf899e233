"""Reading a Prometheus scrape: the value of one sample, by name and labels."""

from pg_runtime.observability.metrics import exposition
from prometheus_client.parser import text_string_to_metric_families


def this_process() -> str:
    """A scrape of this process's own numbers, as METRICS_PORT serves them (an app served
    in-process has no /metrics: the API's port serves the API only)."""
    return exposition().decode()


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` (`_count`, `_sum`, `_total` included in the name)."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]


def value(exposition: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples that carry `labels` (over workers, say); 0 if none."""
    return sum(
        found
        for sample_labels, found in samples(exposition, name)
        if labels.items() <= sample_labels.items()
    )
