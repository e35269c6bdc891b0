"""Structured log lines on stderr for kran's processes.

A line is `time level logger message key=value ...`; the pairs come from
`extra={...}` on the logging call, so context (node id, container id)
travels as fields rather than being formatted into the message.
"""

from __future__ import annotations

import logging
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    """Formats records as one line with extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"{stamp}.{int(record.msecs):03d}Z", record.levelname.lower(), record.name,
                 _quote(record.getMessage())]
        parts += [f"{key}={_quote(value)}" for key, value in record.__dict__.items()
                  if key not in _STANDARD and not key.startswith("_")]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str = "info") -> None:
    """Send every logger's records to stderr at level ("debug", "info", ...)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # gRPC's and aetcd's internals are noisy at debug and say nothing users need.
    for name in ("grpc", "aetcd", "asyncio"):
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
