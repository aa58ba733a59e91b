"""service.logs: the JSON formatter and the worker's logging set-up."""

import json
import logging
import sys

from service.logs import JsonFormatter, configure_worker_logging


def record(**extra: object) -> logging.LogRecord:
    return logging.getLogger("pokewatch.access").makeRecord(
        "pokewatch.access", logging.INFO, __file__, 1, "%s done", ("x",), None, extra=extra
    )


def test_a_json_line_has_the_message_and_the_records_fields() -> None:
    made = record(fields={"request_id": "r1", "status": 200})
    line = JsonFormatter().format(made)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "x done"
    assert (parsed["logger"], parsed["level"]) == ("pokewatch.access", "INFO")
    assert (parsed["request_id"], parsed["status"]) == ("r1", 200)
    assert made.message == "x done"  # what logging.Formatter leaves for other readers


def test_an_exception_stays_on_the_one_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        failed = record()
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_json_format_applies_to_every_configured_handler() -> None:
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    others = {other: other.formatter for other in root.handlers if other is not handler}
    try:
        configure_worker_logging("text")
        assert not isinstance(handler.formatter, JsonFormatter)
        configure_worker_logging("json")
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        root.removeHandler(handler)
        for other, formatter in others.items():
            other.setFormatter(formatter)
