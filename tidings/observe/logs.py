"""The log's format: text (the default) or one JSON object per line, and the request id of the HTTP
request a line was logged for.

The request id lives in a context variable set by the API's outermost middleware (`api.app.RequestId`):
everything a request's task logs, and every task it starts, carries it.
"""

import contextvars
import json
import logging
import time
from typing import Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("tidings_request_id", default=None)

# LogRecord's own attributes: anything else on a record came from `extra=` and is written too.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601 with milliseconds), level, logger, message, the
    request id while a request is handled, the exception's traceback as one string, and any `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        return json.dumps(line, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    seconds = int(created)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"
    )


_format: LogFormat = "text"


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Set up the root logger for a process: its level and format, on standard error."""
    global _format
    _format = log_format
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The HTTP/2 libraries log each frame and header at DEBUG, and headers carry provider tokens.
    for name in ("hpack", "h2"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def current_format() -> LogFormat:
    """The format `configure` set: the HTTP server leaves its loggers to the root's in JSON."""
    return _format
