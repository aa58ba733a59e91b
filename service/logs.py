"""Logging inside a BentoML worker: our access log on, client mistakes off the error log,
and, with `service.log_format: json`, one JSON object a line (for a log collector)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import ValidationError

# BentoML logs every rejected request body as an ERROR with a traceback; the edge
# middleware's access line already records it as a 400.
BENTOML_API_LOGGER = "bentoml._internal.server.http_app"


class DropClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ValidationError)


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", <fields>, "exception"?}` on one line; the
    fields are a record's `fields` extra (the access log's, `service.edge`). They are not
    extras of their own: BentoML's log filters set `request_id` on every record."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()  # as logging.Formatter leaves it, for others
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.message,
        }
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_worker_logging(log_format: Literal["text", "json"] = "text") -> None:
    """Call in the worker, after BentoML has applied its logging configuration."""
    ours = logging.getLogger("pokewatch")
    ours.disabled = False
    ours.setLevel(logging.INFO)
    api_logger = logging.getLogger(BENTOML_API_LOGGER)
    if not any(isinstance(existing, DropClientErrors) for existing in api_logger.filters):
        api_logger.addFilter(DropClientErrors())
    if log_format == "json":
        # Every handler BentoML configured (the root's and its own loggers'), so that no
        # line of the worker stays text.
        for name in (None, "bentoml", "pokewatch"):
            for handler in logging.getLogger(name).handlers:
                handler.setFormatter(JsonFormatter())
