"""Logging inside a BentoML worker: our access log on, client mistakes off the error log."""

from __future__ import annotations

import logging

from pydantic import ValidationError

# BentoML logs every rejected request body as an ERROR with a traceback; the edge
# middleware's access line already records it as a 400.
BENTOML_API_LOGGER = "bentoml._internal.server.http_app"


class DropClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ValidationError)


def configure_worker_logging() -> None:
    """Call in the worker, after BentoML has applied its logging configuration."""
    ours = logging.getLogger("pokewatch")
    ours.disabled = False
    ours.setLevel(logging.INFO)
    api_logger = logging.getLogger(BENTOML_API_LOGGER)
    if not any(isinstance(existing, DropClientErrors) for existing in api_logger.filters):
        api_logger.addFilter(DropClientErrors())
