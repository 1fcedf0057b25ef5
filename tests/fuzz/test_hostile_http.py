"""Hostile HTTP below the API: content encodings and clients that hang up mid-body.

Raw sockets against the real gateway on loopback, so that bytes arrive exactly as a
hostile or broken client sends them (headers and body in one packet, or the body after
the headers). Every refusal is an ``application/problem+json`` answer, sent at once:

* a ``gzip``/``deflate`` body that is cut short, corrupt or followed by other data is
  ``400``; one that decodes past ``MAX_BODY_BYTES`` is ``413``; it used to be a plain
  text ``400`` from aiohttp's parser, or, for a truncated ``deflate`` body sent after its
  headers, no answer at all;
* ``br``, ``zstd``, ``compress`` or several encodings are ``415`` (they were a plain text
  ``400`` from the parser);
* a valid ``gzip`` or ``deflate`` body is decoded and handled as if sent plain;
* a client that closes the connection halfway through its body is logged at INFO, not
  as an unhandled error with a traceback.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time
import zlib
from typing import Final

import pytest

from gateway.http.openapi import document
from tests.fuzz.conftest import MAX_BODY, LoopbackGateway

PROBLEM: Final = "application/problem+json"


def _raw_deflate(data: bytes) -> bytes:
    """Deflate without zlib's header, as some clients send ``Content-Encoding: deflate``."""
    encoder = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return encoder.compress(data) + encoder.flush()


REPORT: Final = {"dossier": "not a code", "kind": "nonsense", "description": "", "phone": ""}
PLAIN: Final = json.dumps(REPORT).encode()
DEFLATED: Final = zlib.compress(PLAIN)
RAW_DEFLATED: Final = _raw_deflate(PLAIN)
GZIPPED: Final = gzip.compress(PLAIN, mtime=0)
# A few hundred bytes that decode to more than MAX_BODY_BYTES.
BOMB: Final = gzip.compress(b" " * (MAX_BODY + 1), mtime=0)


def _exchange(
    gateway: LoopbackGateway,
    body: bytes,
    encoding: str,
    *,
    split: bool,
    path: str = "/v1/reports",
) -> tuple[int, str, bytes]:
    """Status, content type and body of one POST sent on a raw socket.

    With ``split`` the body goes out 50 ms after the headers, as a slow client's would.
    """
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {gateway.admin_token}\r\n"
        f"Content-Type: application/json\r\nContent-Encoding: {encoding}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        if split:
            sock.sendall(head)
            time.sleep(0.05)
            sock.sendall(body)
        else:
            sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):  # a hang is a socket.timeout, failing the test
            answer += chunk
    head_part, _, content = answer.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    content_type = next(
        (
            line.split(":", 1)[1].strip()
            for line in lines
            if line.lower().startswith("content-type:")
        ),
        "",
    )
    return status, content_type, content


def _problem(status: int, content_type: str, content: bytes) -> dict[str, object]:
    assert content_type.startswith(PROBLEM), (status, content_type, content[:200])
    body = json.loads(content)
    assert isinstance(body, dict) and body["status"] == status and body["detail"], body
    return body


REFUSED: Final = [
    pytest.param("deflate", DEFLATED[: len(DEFLATED) // 2], 400, "cut short", id="deflate-half"),
    pytest.param("deflate", DEFLATED[:2], 400, "cut short", id="deflate-header-only"),
    pytest.param("deflate", RAW_DEFLATED[:10], 400, "deflate", id="raw-deflate-half"),
    pytest.param("deflate", b"not deflate at all", 400, "not valid deflate", id="deflate-junk"),
    pytest.param("deflate", DEFLATED + b"x", 400, "followed by other data", id="deflate-tail"),
    pytest.param("gzip", GZIPPED[:20], 400, "cut short", id="gzip-half"),
    pytest.param("gzip", PLAIN, 400, "not valid gzip", id="gzip-plain-body"),
    pytest.param("gzip", BOMB, 413, "larger than", id="gzip-bomb"),
    pytest.param("br", PLAIN, 415, "'br' is not accepted", id="br"),
    pytest.param("zstd", PLAIN, 415, "'zstd' is not accepted", id="zstd"),
    pytest.param("compress", PLAIN, 415, "'compress' is not accepted", id="compress"),
    pytest.param(
        "gzip, gzip", gzip.compress(GZIPPED, mtime=0), 415, "not accepted", id="gzip-twice"
    ),
]


@pytest.mark.parametrize("split", [False, True], ids=["one-packet", "body-after-headers"])
@pytest.mark.parametrize(("encoding", "body", "status", "says"), REFUSED)
def test_bad_encodings_are_refused_at_once_as_problems(
    loopback: LoopbackGateway, encoding: str, body: bytes, status: int, says: str, split: bool
) -> None:
    answer = _problem(*_exchange(loopback, body, encoding, split=split))
    assert answer["status"] == status, answer
    assert says in str(answer["detail"]), answer


@pytest.mark.parametrize(("path", "method"), [("/v1/reports", "post"), ("/webhooks/zalo", "post")])
@pytest.mark.parametrize("status", ["400", "413", "415"])
def test_the_document_lists_these_refusals(
    loopback: LoopbackGateway, path: str, method: str, status: str
) -> None:
    operation = document(loopback.settings)["paths"][path][method]
    assert "application/problem+json" in operation["responses"][status]["content"]


def test_a_request_without_a_body_is_not_held_to_its_content_encoding(
    loopback: LoopbackGateway,
) -> None:
    for encoding in ("br", "gzip", "deflate, br"):
        answer = loopback.session.get(
            loopback.url + "/healthz", headers={"Content-Encoding": encoding}, timeout=5
        )
        assert answer.status_code == 200, (encoding, answer.text)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", GZIPPED),
        ("x-gzip", GZIPPED),
        ("deflate", DEFLATED),
        ("deflate", RAW_DEFLATED),
        ("identity", PLAIN),
        (" GZIP ", GZIPPED),
    ],
)
def test_encoded_bodies_are_decoded_for_the_handler(
    loopback: LoopbackGateway, encoding: str, body: bytes
) -> None:
    # The report is invalid on purpose: the 422 naming its fields shows the JSON was read.
    answer = _problem(*_exchange(loopback, body, encoding, split=True))
    assert answer["status"] == 422, answer
    fields = {error["field"] for error in answer["errors"]}  # type: ignore[attr-defined]
    assert {"dossier", "kind", "description", "phone"} <= fields, answer


@pytest.mark.parametrize("path", ["/v1/events", "/webhooks/zalo", "/v1/reports"])
def test_a_client_hanging_up_mid_body_is_not_an_error(
    loopback: LoopbackGateway, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {loopback.admin_token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", loopback.port), timeout=5) as sock:
        sock.sendall(head + b'{"id": "evt-1", "type": ')
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(r.getMessage() == "client closed the connection" for r in caplog.records):
            break
        time.sleep(0.02)
    gone = [r for r in caplog.records if r.getMessage() == "client closed the connection"]
    assert [r.levelno for r in gone] == [logging.INFO], caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
