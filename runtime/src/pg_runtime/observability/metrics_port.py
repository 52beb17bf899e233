"""The metrics' own port (METRICS_HOST:METRICS_PORT), served by `python main.py`'s supervising
process: a scraper reaches it, a client of the API's port does not.

A port rather than a token on the API's port: nothing of the scrape path is left on the
public port to guess, leak or brute-force, a platform that routes one port (PORT) never
routes this one, and a scrape, which reads every worker's files, costs the workers nothing.
"""

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from pg_runtime.observability.metrics import scraped


class MetricsPortError(RuntimeError):
    """METRICS_HOST:METRICS_PORT cannot be listened on; the message names both settings."""


@contextmanager
def metrics_port(host: str, port: int) -> Iterator[None]:
    """Serve the metrics on `host`:`port` (a thread of this process) while inside.

    Entered after PROMETHEUS_MULTIPROC_DIR is set, if it is: the scrape reads the workers'
    files then, and this process's own counts otherwise (one worker, in this process).
    """
    try:
        server, thread = start_http_server(port, host, scraped())
    except OSError as error:
        reason = "in use" if error.errno == errno.EADDRINUSE else type(error).__name__
        raise MetricsPortError(
            f"METRICS_HOST:METRICS_PORT ({host}:{port}) cannot be listened on: {reason}"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
