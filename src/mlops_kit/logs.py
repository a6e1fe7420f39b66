"""Log lines for people or for machines: `text` (the default) or `json`, one object a line.

The format is chosen by `--log-format` (the CLI's and the server's) or else by `MLOPS_LOG_FORMAT`, which
processes the CLI starts (a local endpoint's server) inherit. A JSON line carries the time (ISO 8601,
UTC), level, logger, pid and message, plus the fields a call gave in `extra=` (a refused request's
method, path, status and reason), so a log shipper needs no pattern to parse them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

FORMATS = ("text", "json")
ENV = "MLOPS_LOG_FORMAT"

# What every LogRecord has: anything else on a record came from `extra=` and goes into the JSON line.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def chosen(log_format: str | None = None) -> str:
    """The format to use: the one given, else $MLOPS_LOG_FORMAT, else text; anything else is refused."""
    value = (log_format or os.environ.get(ENV) or "text").strip().lower()
    if value not in FORMATS:
        where = "--log-format" if log_format else ENV
        raise ValueError(f"{where}: unknown log format {value!r}; expected one of {', '.join(FORMATS)}")
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test runner swaps it between tests)."""

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(log_format: str | None = None, *, text_format: str, level: int = logging.INFO) -> str:
    """Send the root logger's records to stderr in the chosen format. Called again, it replaces its own
    handler only: handlers others installed (a test runner's) stay."""
    fmt = chosen(log_format)
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(text_format))
    handler._mlops_kit = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_mlops_kit", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return fmt
