"""Logs are JSON lines and never carry a full phone number, whatever the call site does."""

from __future__ import annotations

import io
import json
import logging

from gateway.logs import JsonFormatter, TextFormatter


def _emit(formatter: logging.Formatter, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info(*args, extra=extra)  # type: ignore[arg-type]
    finally:
        logger.handlers.clear()
    return stream.getvalue()


def test_json_lines_mask_message_and_extra_fields() -> None:
    line = _emit(
        JsonFormatter(),
        "sent to %s",
        "0912 345 678",
        phone="+84912345678",
        nested={"to": ["0987654321"]},
    )
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "tests.logs"
    for digits in ("912345678", "912 345 678", "987654321"):
        assert digits not in line
    assert entry["msg"].startswith("sent to ")
    assert entry["phone"] != "+84912345678"


def test_exceptions_are_masked_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs.exc")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        raise ValueError("bad number 0912345678")
    except ValueError:
        logger.exception("failed")
    logger.handlers.clear()
    assert "0912345678" not in stream.getvalue()
    assert "ValueError" in json.loads(stream.getvalue())["exc"]


def test_text_format_is_masked() -> None:
    assert "0912345678" not in _emit(TextFormatter("%(message)s"), "call 0912345678 now")
