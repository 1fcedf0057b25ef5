"""Signed requests bind the whole request (issue 11, "Trust"): the ``v2=`` signature.

``v2=`` covers ``<X-Timestamp>.<METHOD>.<path and query as sent>.<raw body>``; the old
``sha256=`` form (body only) stays for ``POST`` while ``ACCEPT_V1_SIGNATURES`` is on.
Everything runs against a real gateway on loopback HTTP, with SQLite and PostgreSQL;
odd header bytes go over a raw socket so that no client library tidies them first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from typing import Any

import pytest
from yarl import URL

from gateway.cli.main import _get as tthc_get
from gateway.errors import ConfigError
from gateway.http.app import create_app
from gateway.http.signing import (
    MAX_FUTURE_SECONDS,
    signature,
    signature_v2,
    signed_headers,
    signed_headers_v2,
)
from gateway.processes.server import warn_about_settings
from gateway.settings import Settings
from tests.helpers import CODE, SOURCES, Gateway, event

OTHER = "000.00.12.H19-240401-0002"
SECRET = SOURCES["onestop"]
# 2024-04-03T09:00:00+07:00: the clock of the `clocked` gateway.
NOW = 1_712_109_600


def _path(code: str, query: str = "") -> str:
    return f"/v1/dossiers/{code}" + (f"?{query}" if query else "")


def _v2(method: str, path_qs: str, body: bytes = b"", now: float | None = None) -> dict[str, str]:
    moment = time.time() if now is None else now
    return signed_headers_v2("onestop", SECRET, method, path_qs, body, moment)


async def _two_dossiers(gateway: Gateway, now: float | None = None) -> None:
    for code in (CODE, OTHER):
        raw = json.dumps(event("dossier.received", code=code)).encode()
        headers = _v2("POST", "/v1/events", raw, now) | {"Content-Type": "application/json"}
        response = await gateway.post_raw("/v1/events", raw, headers=headers)
        assert response.status == 202, await response.text()


async def _get(gateway: Gateway, path_qs: str, headers: dict[str, str]) -> tuple[int, Any]:
    # encoded=True: the target goes on the wire exactly as written, as it was signed.
    response = await gateway.client.get(URL(path_qs, encoded=True), headers=headers)
    return response.status, await response.json()


@pytest.fixture
async def v1_off(settings: Settings, aiohttp_client: Any) -> Gateway:
    """A gateway that has finished the migration: ``ACCEPT_V1_SIGNATURES=false``."""
    off = dataclasses.replace(settings, accept_v1_signatures=False)
    return Gateway(await aiohttp_client(create_app(off)), off)


@pytest.fixture
async def clocked(settings: Settings, aiohttp_client: Any) -> Gateway:
    """A gateway whose clock stands still at ``NOW``."""
    return Gateway(await aiohttp_client(create_app(settings, clock=lambda: NOW)), settings)


# --- the request is bound ------------------------------------------------------------


async def test_a_v2_signed_get_reads_the_dossier_it_names(gateway: Gateway) -> None:
    await _two_dossiers(gateway)
    status, view = await _get(gateway, _path(CODE), _v2("GET", _path(CODE)))
    assert status == 200, view
    assert view["code"] == CODE


async def test_a_captured_get_of_dossier_a_cannot_read_dossier_b(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    await _two_dossiers(gateway)
    captured = _v2("GET", _path(CODE))
    status, view = await _get(gateway, _path(CODE), captured)
    assert status == 200 and view["code"] == CODE

    with caplog.at_level(logging.WARNING, logger="gateway.http.api"):
        status, problem = await _get(gateway, _path(OTHER), captured)
    assert status == 401, problem
    assert problem["detail"] == "signature does not match the request"
    refusals = [r for r in caplog.records if r.getMessage() == "signed request refused"]
    assert len(refusals) == 1
    assert refusals[0].__dict__["reason"] == "signature does not match the request"
    logged = caplog.text + json.dumps([vars(r) for r in refusals], default=str)
    assert captured["X-Signature"].removeprefix("v2=") not in logged
    assert SECRET not in logged


@pytest.mark.parametrize(
    ("signed_query", "sent_query"),
    [("", "x=1"), ("x=1", ""), ("x=1", "x=2"), ("a=1&b=2", "b=2&a=1")],
)
async def test_a_signed_get_replayed_with_another_query_is_refused(
    gateway: Gateway, signed_query: str, sent_query: str
) -> None:
    await _two_dossiers(gateway)
    headers = _v2("GET", _path(CODE, signed_query))
    status, _ = await _get(gateway, _path(CODE, signed_query), headers)
    assert status == 200
    status, problem = await _get(gateway, _path(CODE, sent_query), headers)
    assert status == 401, problem


async def test_the_target_is_signed_as_sent_on_the_wire(gateway: Gateway) -> None:
    await _two_dossiers(gateway)
    # The same dossier, written with percent-encoding: the router decodes it, the
    # signature covers the encoded form that travelled.
    encoded = _path(CODE.replace(".", "%2E", 1), "ghi=ch%C3%BA")
    status, view = await _get(gateway, encoded, _v2("GET", encoded))
    assert status == 200, view
    assert view["code"] == CODE
    decoded = _path(CODE, "ghi=chú")
    status, problem = await _get(gateway, encoded, _v2("GET", decoded))
    assert status == 401, problem


async def test_the_method_is_bound(gateway: Gateway) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    as_get = _v2("GET", "/v1/events", raw) | {"Content-Type": "application/json"}
    response = await gateway.post_raw("/v1/events", raw, headers=as_get)
    assert response.status == 401
    as_post = _v2("POST", "/v1/events", raw) | {"Content-Type": "application/json"}
    response = await gateway.post_raw("/v1/events", raw, headers=as_post)
    assert response.status == 202, await response.text()


async def test_a_v2_post_signed_for_another_path_is_refused(gateway: Gateway) -> None:
    raw = json.dumps({"dossier": CODE}).encode()
    headers = _v2("POST", "/v1/events", raw) | {"Content-Type": "application/json"}
    response = await gateway.post_raw("/v1/checks/pause", raw, headers=headers)
    assert response.status == 401


async def test_upper_case_hex_is_the_same_signature(gateway: Gateway) -> None:
    await _two_dossiers(gateway)
    headers = _v2("GET", _path(CODE))
    headers["X-Signature"] = "v2=" + headers["X-Signature"].removeprefix("v2=").upper()
    status, _ = await _get(gateway, _path(CODE), headers)
    assert status == 200


# --- the first form (sha256=) during the migration ------------------------------------


async def test_v1_still_signs_a_post_while_accepted(gateway: Gateway) -> None:
    assert gateway.settings.accept_v1_signatures  # the default keeps integrations working
    status, answer, _ = await gateway.post(event("dossier.received"))
    assert status == 202, answer


async def test_v1_never_signs_a_get(gateway: Gateway) -> None:
    await _two_dossiers(gateway)
    headers = signed_headers("onestop", SECRET, b"", time.time())
    status, problem = await _get(gateway, _path(CODE), headers)
    assert status == 401
    assert "POST only" in problem["detail"]


async def test_v1_is_refused_once_turned_off(v1_off: Gateway) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    response = await v1_off.post_raw("/v1/events", raw)  # the helper signs with sha256=
    problem = await response.json()
    assert response.status == 401, problem
    assert "v2=" in problem["detail"]
    headers = _v2("POST", "/v1/events", raw) | {"Content-Type": "application/json"}
    response = await v1_off.post_raw("/v1/events", raw, headers=headers)
    assert response.status == 202, await response.text()


async def test_a_v2_prefix_on_a_v1_signature_is_refused(gateway: Gateway) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    headers = gateway.headers(raw)
    v1_hex = signature(SECRET, headers["X-Timestamp"], raw).removeprefix("sha256=")
    headers["X-Signature"] = "v2=" + v1_hex
    response = await gateway.post_raw("/v1/events", raw, headers=headers)
    assert response.status == 401


# --- clocks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "status"),
    [(MAX_FUTURE_SECONDS + 1, 401), (MAX_FUTURE_SECONDS, 200), (-300, 200), (-301, 401)],
)
async def test_a_timestamp_from_the_future_is_refused(
    clocked: Gateway, skew: int, status: int
) -> None:
    await _two_dossiers(clocked, now=NOW)
    got, body = await _get(clocked, _path(CODE), _v2("GET", _path(CODE), now=NOW + skew))
    assert got == status, body
    if status == 401:
        assert "X-Timestamp" in body["detail"]


# --- odd bytes: 401, never 500 -------------------------------------------------------


async def _raw_get(gateway: Gateway, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """A GET written byte by byte on a socket, so no client can clean the headers up."""
    server = gateway.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    lines = [f"GET {_path(CODE)} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    writer.write(b"\r\n".join([*lines, b"Connection: close", b"", b""]))
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _odd_cases() -> list[tuple[str, bytes, bytes]]:
    good_hex = b"0" * 64
    return [
        ("superscript two", "²".encode(), b"v2=" + good_hex),
        ("superscript digits", "¹⁷¹²¹⁰⁹⁶⁰⁰".encode(), b"v2=" + good_hex),
        ("arabic-indic digits", "١٧١٢١٠٩٦٠٠".encode(), b"v2=" + good_hex),
        ("fullwidth digits", "１７１２１０９６００".encode(), b"v2=" + good_hex),
        ("byte 0xFF", b"\xff", b"v2=" + good_hex),
        ("latin-1 digit-like", b"17121\xb2", b"v2=" + good_hex),
        ("huge number", b"9" * 5000, b"v2=" + good_hex),
        ("20 digits", b"9" * 20, b"v2=" + good_hex),
        ("negative", b"-1712109600", b"v2=" + good_hex),
        ("exponent", b"1.7e9", b"v2=" + good_hex),
        ("signature 0xFF", b"NOW", b"v2=" + b"\xff" * 64),
        ("signature superscript", b"NOW", b"v2=" + "²".encode() * 32),
        ("signature non-hex", b"NOW", b"v2=" + b"g" * 64),
        ("signature too long", b"NOW", b"v2=" + b"0" * 5000),
        ("signature unknown scheme", b"NOW", b"v3=" + good_hex),
        ("signature non-ascii scheme", b"NOW", "vé=".encode() + good_hex),
    ]


@pytest.mark.parametrize(("case", "timestamp", "given"), _odd_cases(), ids=lambda v: str(v))
async def test_odd_bytes_in_the_headers_are_401_never_500(
    gateway: Gateway, case: str, timestamp: bytes, given: bytes
) -> None:
    if timestamp == b"NOW":
        timestamp = str(int(time.time())).encode()
    headers = [(b"X-Source-Id", b"onestop"), (b"X-Timestamp", timestamp), (b"X-Signature", given)]
    status, body = await _raw_get(gateway, headers)
    assert status == 401, (case, body)
    assert b"urn:tthc:problem:unauthenticated" in body


@pytest.mark.parametrize("source", [b"\xff", "nguồn".encode(), b"x" * 5000])
async def test_odd_bytes_in_the_source_are_401(gateway: Gateway, source: bytes) -> None:
    now = str(int(time.time()))
    given = signature_v2(SECRET, now, "GET", _path(CODE), b"").encode()
    status, _ = await _raw_get(
        gateway, [(b"X-Source-Id", source), (b"X-Timestamp", now.encode()), (b"X-Signature", given)]
    )
    assert status == 401


async def test_the_raw_socket_request_itself_is_accepted(gateway: Gateway) -> None:
    # The control of the two tests above: well-formed headers over the same socket pass.
    await _two_dossiers(gateway)
    now = str(int(time.time()))
    given = signature_v2(SECRET, now, "GET", _path(CODE), b"").encode()
    status, body = await _raw_get(
        gateway,
        [(b"X-Source-Id", b"onestop"), (b"X-Timestamp", now.encode()), (b"X-Signature", given)],
    )
    assert status == 200, body


# --- tthc get, settings, start-up ---------------------------------------------------


async def test_tthc_get_signs_with_v2(v1_off: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    await _two_dossiers(v1_off)
    base = str(v1_off.client.make_url("/"))
    # A query with a character the client must percent-encode: it signs what it sends.
    status = await tthc_get(v1_off.settings, _path(CODE, "ghi=chú"), base, None, None)
    out = capsys.readouterr().out
    assert status == 0, out
    assert json.loads(out)["code"] == CODE


async def test_tthc_get_with_a_wrong_secret_fails(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(gateway.client.make_url("/"))
    status = await tthc_get(gateway.settings, _path(CODE), base, "onestop", "x" * 40)
    assert status == 1
    assert json.loads(capsys.readouterr().out)["status"] == 401


def test_accept_v1_signatures_is_read_and_checked() -> None:
    assert Settings.from_mapping({}).accept_v1_signatures is True
    assert Settings.from_mapping({"ACCEPT_V1_SIGNATURES": "false"}).accept_v1_signatures is False
    with pytest.raises(ConfigError, match="ACCEPT_V1_SIGNATURES"):
        Settings.from_mapping({"ACCEPT_V1_SIGNATURES": "maybe"})


@pytest.mark.parametrize("accept", [True, False])
def test_start_up_warns_while_v1_is_accepted(
    accept: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(Settings.from_mapping({}), accept_v1_signatures=accept)
    with caplog.at_level(logging.WARNING, logger="gateway.processes.server"):
        warn_about_settings(settings)
    warned = [r for r in caplog.records if "ACCEPT_V1_SIGNATURES" in r.getMessage()]
    assert len(warned) == (1 if accept else 0)
