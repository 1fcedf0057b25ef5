"""Structured logs: one JSON object per line, phone numbers and path secrets masked.

Masking happens in the formatter, so no call site can forget it: the message, every
``extra`` field and exception text pass through :func:`mask_phones_in_text` and
:func:`redact_secret_paths`. Our own call sites also never log the SMS receipt path
(whose last part is ``SMS_WEBHOOK_SECRET``); the formatter is the second line, for
library messages (aiohttp's access log or its errors about a request, if enabled).

One-time codes are never logged: no call site logs a notice's params or an OTP message's
text (the ``log`` SMS provider masks the code), and the database drivers, whose DEBUG
lines carry statement parameters, stay at WARNING (:func:`quiet_database_drivers`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.domain.phones import mask_phones_in_text

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# /webhooks/sms/{provider}/{secret}: everything after the provider is the secret.
_RECEIPT_PATH = re.compile(r"(/webhooks/sms/[^/?#\s\"'<>]*/)[^?#\s\"'<>]+")
REDACTED = "[redacted]"


def redact_secret_paths(text: str) -> str:
    """``text`` with the secret part of every SMS receipt path or URL replaced.

    Used for log lines and for anything echoed back (a problem's ``instance``), so the
    receipt path secret is never written anywhere but the vendor's configuration.
    """
    return _RECEIPT_PATH.sub(rf"\g<1>{REDACTED}", text)


def _clean(text: str) -> str:
    return mask_phones_in_text(redact_secret_paths(text))


def _each_string(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string in it, through dicts and lists."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _each_string(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_each_string(v, change) for v in value)
    return value


class RedactSecretPaths(logging.Filter):
    """Rewrites a library's record so the receipt path secret is gone before any handler.

    aiohttp's access log writes the request line (and puts it in ``extra`` fields), and
    its request errors may quote it; a filter on those loggers runs before the record
    reaches any handler, whoever installed the handler (our formatters, pytest's caplog,
    an embedding application).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact_secret_paths(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secret_paths(record.exc_text)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                record.__dict__[key] = _each_string(value, redact_secret_paths)
        return True


# Loggers of libraries that may write a request's path. Installed on import: every
# process of the gateway imports this module (the HTTP app's error middleware does).
_LIBRARY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.client",
    "aiohttp.internal",
)
for _name in _LIBRARY_LOGGERS:
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, RedactSecretPaths) for f in _logger.filters):
        _logger.addFilter(RedactSecretPaths())


def _mask(value: Any) -> Any:
    return _each_string(value, _clean)


class JsonFormatter(logging.Formatter):
    """Formats records as single-line JSON with masked phone numbers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _clean(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _mask(value)
        if record.exc_info:
            entry["exc"] = _clean(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, masked the same way."""

    def format(self, record: logging.LogRecord) -> str:
        return _clean(super().format(record))


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Install the project's formatter on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    quiet_database_drivers()


# Database drivers write every statement with its parameters at DEBUG (and SQLAlchemy at
# INFO when echoing): one-time codes and phone numbers are parameters. Never below WARNING.
DATABASE_DRIVER_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool")


def quiet_database_drivers() -> None:
    """Keep the database drivers' statement logs off, whatever ``LOG_LEVEL`` says."""
    for name in DATABASE_DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
