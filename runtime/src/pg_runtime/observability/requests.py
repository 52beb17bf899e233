"""Around every HTTP request: its id, its line in the log, its count and duration."""

import logging
import time

from opentelemetry import trace
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pg_runtime.observability import request_id
from pg_runtime.observability.metrics import REQUEST_DURATION

logger = logging.getLogger("app.requests")

_HEADER = request_id.HEADER.lower().encode()
# Requests that matched no route share one label: raw paths would let any client create
# a new series per path.
UNMATCHED = "unmatched"
# The same for methods: h11 accepts any token as one.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The route's template (`/users/{user_id}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path is not None else UNMATCHED


class ObservedRequests:
    """Gives each request its id (header, logs, span) and, when it ends, logs and counts it.

    The outermost of the app's middleware, so that the error answers and their log lines
    (pg_runtime/errors.py) fall inside the request's id and duration.
    """

    def __init__(self, app: ASGIApp, access_log: bool = True, count: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        self.count = count
        # The histogram of each (method, route, status class): labels() takes a lock.
        self._histograms: dict[tuple[str, str, int], Histogram] = {}

    def _histogram(self, method: str, route: str, status: int) -> Histogram:
        key = (method, route, status // 100)
        if (found := self._histograms.get(key)) is None:
            found = REQUEST_DURATION.labels(method, route, f"{status // 100}xx")
            self._histograms[key] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((value for name, value in scope["headers"] if name == _HEADER), None)
        this_request = request_id.from_header(given)
        token = request_id.current.set(this_request)
        trace.get_current_span().set_attribute("request.id", this_request)
        status = 500  # if the app fails before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (_HEADER, this_request.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = route_template(scope)
            if self.count:
                self._histogram(method, route, status).observe(seconds)
            if self.access_log:
                logger.info(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    seconds * 1000,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )
            request_id.current.reset(token)
