"""The service's log records: one JSON object per line on stderr, each carrying the id of
the request it was written in."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from flask import g, has_request_context

# LogRecord's own attributes; anything else on a record came in through ``extra=``.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


# Every line is encoded by one encoder: ``json.dumps`` with options builds a new one per call.
_JSON_LINE = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, the record's
    ``extra=`` fields, and the traceback (as one string) when there is one."""

    def __init__(self) -> None:
        super().__init__()
        # The last second a record was written in, and its text (one tuple: threads may
        # format at once).
        self._last_second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if "request_id" not in record.__dict__ and has_request_context():
            entry["request_id"] = g.get("request_id")
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _JSON_LINE.encode(entry)

    def _time(self, created: float) -> str:
        """``2026-11-23T17:05:09.042Z``: UTC, to the millisecond (of the time rounded to the
        microsecond first, much as ``datetime.fromtimestamp`` rounds it)."""
        second, microseconds = divmod(round(created * 1_000_000), 1_000_000)
        last, text = self._last_second
        if second != last:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._last_second = (second, text)
        return f"{text}.{microseconds // 1000:03d}Z"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at start-up (as
    ``logging.lastResort`` does), so that a replaced stderr (pytest's capture) is followed."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        """``StreamHandler.emit``, with the stream looked up once and flushed at once
        (``handle`` holds the handler's lock already; ``flush`` would take it again)."""
        try:
            stream = sys.stderr
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure_logging(level: int) -> None:
    """Send every record at ``level`` or above to stderr as JSON.

    The handler goes on the root logger, once per process however many apps are created;
    other handlers (pytest's ``caplog``) are left in place and keep receiving records.
    """
    # No record needs the file, line and function it was logged from (JsonFormatter leaves
    # them out): the logging HOWTO's "Optimization" setting spares a walk up the stack for
    # every record.
    logging._srcfile = None
    # Nor the thread and process it was logged in (the same HOWTO section): each record
    # would look them up.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    if not any(isinstance(handler, StderrHandler) for handler in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
