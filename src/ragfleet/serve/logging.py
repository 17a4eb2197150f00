"""Structured JSON logs, one object per line, each carrying the request id.

The request id is taken from an incoming ``X-Request-ID`` header when it is a short
token (``[A-Za-z0-9._-]{1,64}``), else generated; it is echoed in the response header.
Nothing secret is logged: the access log names the key by its *name* only, and no header
value is ever written (a filter also masks anything that looks like a bearer token or a
ragfleet key in a message, as a second line of defence).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SECRET = re.compile(r"(?i)(bearer\s+)\S+|rf_[0-9a-f]{8}_[A-Za-z0-9_-]+")
LOGGER = "ragfleet.serve"


def new_request_id(header: str | None) -> str:
    """The caller's id if it is a safe token, else 16 random hex digits."""
    if header and _VALID_ID.match(header):
        return header
    return secrets.token_hex(8)


def redact(text: str) -> str:
    """``text`` with bearer tokens and ragfleet keys replaced by ``[redacted]``."""
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "request_id": request_id.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k.lower() != "authorization"})
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> logging.Logger:
    """Send the ``ragfleet.serve`` logger to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def log_event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields``."""
    logger.log(level, msg, extra={"fields": fields})
