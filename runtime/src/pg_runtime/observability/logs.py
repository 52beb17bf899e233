"""Where log lines go and how they read: one line per record on stderr, from every logger.

Text (the default) reads well in a terminal; LOG_FORMAT=json writes one JSON object per
line for a log pipeline. Both carry the request id of the request being served.

The standard library's logging, with python-json-logger's formatter: uvicorn, SQLAlchemy,
Alembic and this code all log through it already, so one handler on the root logger
formats every line, uvicorn's own included (uvicorn gets the same configuration). Its
orjson variant formats a line in half the time of the json module's.
"""

import logging
import logging.config
from typing import Any

from pg_runtime.observability import request_id
from pg_runtime.settings import RuntimeSettings

_TEXT = "%(levelname)-9s %(name)s: %(message)s"
_JSON = "%(levelname)s %(name)s %(process)d %(message)s"
# uvicorn's loggers keep no handler of their own and pass their lines to the root's.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to each line written while a request is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (current := request_id.current.get()) is not None:
            record.request_id = current
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if (current := getattr(record, "request_id", None)) is not None:
            return f"{line} [request {current}]"
        return line


def logging_config(settings: RuntimeSettings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the app and uvicorn (its `log_config`)."""
    if settings.log_format == "json":
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": _JSON,
            "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": True,
        }
    else:
        formatter = {"()": TextFormatter, "fmt": _TEXT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in _UVICORN_LOGGERS},
            # The app writes its own line per request (app.requests), with the route
            # template and the request id; uvicorn's would be a second, with the raw path.
            "uvicorn.access": {"handlers": [], "propagate": False},
            # SQLAlchemy keeps its own pool's chatter at WARNING; ours is a subclass of it.
            "pg_runtime.observability.database.MeasuredPool": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": settings.log_level.upper()},
    }


def configure_logging(settings: RuntimeSettings) -> None:
    logging.config.dictConfig(logging_config(settings))
