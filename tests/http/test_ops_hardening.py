"""Operational hardening: the receipt path secret never reaches a log line or a metric,
and ``/metrics`` and the detail of ``/readyz`` need the operations token (OPS_TOKEN)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.http.app import create_app
from gateway.local.redis_server import free_port
from gateway.logs import JsonFormatter, TextFormatter
from gateway.settings import Settings
from providers.base import SmsMessage
from providers.log import LogProvider
from tests.helpers import rename_table

SECRET = "rcpt-5e0b9d2a7c4f1836e2a9b0c7d4f61e38"
NEAR_MISS = "rcpt-5e0b9d2a7c4f1836e2a9b0c7d4f61e39"  # a vendor's typo of the real one
TOKEN = "ops-2c7e9a4b1d6f3058c2e7a9b4d1f6c305"
ESMS = {
    "SMS_PROVIDERS": "esms",
    "ESMS_API_KEY": "key",
    "ESMS_SECRET_KEY": "secret",
    "ESMS_BRANDNAME": "TTHC",
    "SMS_WEBHOOK_SECRET": SECRET,
}


def _with(settings: Settings, **env: str) -> Settings:
    return Settings.from_mapping({**settings.env, **env})


@pytest.fixture
async def ops(settings: Settings, aiohttp_client: Any) -> AsyncIterator[TestClient]:
    client: TestClient = await aiohttp_client(create_app(_with(settings, OPS_TOKEN=TOKEN, **ESMS)))
    yield client


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record's message, every attribute and its traceback, raw and formatted."""
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.extend(repr(value) for value in vars(record).values())
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


# --- /metrics and /readyz --------------------------------------------------------------


async def test_metrics_need_the_ops_token(ops: TestClient) -> None:
    refused = await ops.get("/metrics")
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "tthc_" not in await refused.text()
    for header in (_bearer("ops-wrong-token-0000000000000000000000"), {"Authorization": TOKEN}):
        assert (await ops.get("/metrics", headers=header)).status == 401
    answered = await ops.get("/metrics", headers=_bearer())
    assert answered.status == 200
    assert "tthc_http_request_seconds" in await answered.text()


async def test_metrics_are_off_without_an_ops_token(
    settings: Settings, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(settings))
    assert settings.ops_token == ""
    for headers in ({}, _bearer(), {"Authorization": "Bearer "}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 404
        assert "OPS_TOKEN" in (await response.json())["detail"]


async def test_readyz_says_only_ok_without_the_token_and_the_detail_with_it(
    ops: TestClient,
) -> None:
    public = await ops.get("/readyz")
    assert public.status == 200
    assert await public.json() == {"status": "ok"}
    detail = await ops.get("/readyz", headers=_bearer())
    assert detail.status == 200
    assert await detail.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok"},
    }
    wrong = await ops.get("/readyz", headers=_bearer("not-the-token"))
    assert wrong.status == 401


async def test_readyz_without_the_token_hides_which_part_is_down(
    settings: Settings, aiohttp_client: Any
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await aiohttp_client(create_app(_with(settings, OPS_TOKEN=TOKEN, REDIS_URL=dead)))
    public = await client.get("/readyz")
    assert public.status == 503
    assert await public.json() == {"status": "unavailable"}
    detail = await client.get("/readyz", headers=_bearer())
    assert detail.status == 503
    body = await detail.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unavailable")


async def test_the_root_page_says_the_token_is_needed(ops: TestClient) -> None:
    page = await (await ops.get("/")).text()
    assert '<a href="/metrics">' in page and "OPS_TOKEN" in page
    assert TOKEN not in page


# --- the receipt path secret ---------------------------------------------------------


async def test_the_receipt_secret_reaches_no_log_line_no_answer_and_no_metric(
    ops: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    good = f"/webhooks/sms/esms/{SECRET}"
    # A good receipt (for a message we never sent), one the parser refuses, a wrong secret.
    for path, status in (
        (f"{good}?SendStatus=5&SMSID=unknown-1", 200),
        (f"{good}?nothing=here", 400),
        (f"/webhooks/sms/esms/{NEAR_MISS}?SendStatus=5&SMSID=x", 401),
        (f"/webhooks/sms/nosuch/{SECRET}?SendStatus=5&SMSID=x", 404),
    ):
        response = await ops.get(path)
        assert response.status == status, (path, await response.text())
        answers.append(await response.text())
    # An error nobody planned for: the table is gone behind the gateway's back.
    await rename_table(settings.database_url, "deliveries", "deliveries_gone")
    try:
        failed = await ops.get(f"{good}?SendStatus=5&SMSID=unknown-2")
        assert failed.status in (500, 503)
        answers.append(await failed.text())
    finally:
        await rename_table(settings.database_url, "deliveries_gone", "deliveries")
    metrics = await (await ops.get("/metrics", headers=_bearer())).text()

    logged = _everything_logged(caplog.records)
    assert "receipts for unknown messages" in logged  # the good receipt was heard
    assert "receipt with a wrong path secret" in logged
    assert any(r.exc_info for r in caplog.records)  # the error was logged, with its traceback
    for secret in (SECRET, NEAR_MISS):
        assert secret not in logged
        assert not [a for a in answers if secret in a], answers
        assert secret not in metrics
    for formatter in (JsonFormatter(), TextFormatter("%(message)s %(path)s")):
        for record in caplog.records:
            record.__dict__.setdefault("path", "")
            assert SECRET not in formatter.format(record)
    assert 'route="/webhooks/sms/{provider}/{secret}",status="2xx"' in metrics
    assert 'route="/webhooks/sms/{provider}/{secret}",status="4xx"' in metrics
    problem = json.loads(answers[1])
    assert problem["instance"] == "/webhooks/sms/esms/[redacted]"


async def test_the_log_provider_does_not_log_the_receipt_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    message = SmsMessage("notice-1", "notice-1:sms:log", "+84912345678", "Xin chào", False, 1)
    url = f"https://gateway.example/webhooks/sms/log/{SECRET}"
    await LogProvider().send(message, callback_url=url)
    [record] = caplog.records
    assert SECRET not in _everything_logged([record])
    assert record.__dict__["callback_url"] == "https://gateway.example/webhooks/sms/log/[redacted]"


def test_the_formatters_redact_the_secret_whoever_logs_it() -> None:
    """Library lines (aiohttp's access log or request errors) pass the same formatter."""
    try:
        raise ValueError(f"bad request line GET /webhooks/sms/esms/{SECRET}?a=1 HTTP/1.1")
    except ValueError:
        record = logging.LogRecord(
            "aiohttp.access",
            logging.INFO,
            __file__,
            1,
            '%s "GET %s HTTP/1.1" 200',
            ("127.0.0.1", f"/webhooks/sms/speedsms/{SECRET}"),
            exc_info=sys.exc_info(),
        )
    record.__dict__["url"] = f"http://127.0.0.1:8080/webhooks/sms/esms/{SECRET}"
    line = JsonFormatter().format(record)
    assert SECRET not in line
    entry = json.loads(line)
    assert entry["msg"] == '127.0.0.1 "GET /webhooks/sms/speedsms/[redacted] HTTP/1.1" 200'
    assert entry["url"].endswith("/webhooks/sms/esms/[redacted]")
    assert "/webhooks/sms/esms/[redacted]?a=1" in entry["exc"]
    assert SECRET not in TextFormatter("%(message)s").format(record)
