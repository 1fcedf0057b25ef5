"""Request bodies sent with a ``Content-Encoding``: decoded here, not by aiohttp's parser.

aiohttp decodes ``gzip`` and ``deflate`` request bodies inside its HTTP parser when left
to itself (``auto_decompress``), and that parser fails in ways no middleware can shape:

* a truncated ``deflate`` body whose bytes arrive after the headers leaves the handler
  waiting for the rest of a body that never comes: no answer at all, until the client
  gives up;
* ``br`` and ``zstd`` (without their optional libraries) and a truncated ``deflate``
  body that arrives with its headers are answered ``400 text/plain`` before any
  middleware runs.

So :func:`create_app` turns ``auto_decompress`` off and this middleware decodes instead:
``identity`` (or none) passes through; ``gzip``, ``x-gzip`` and ``deflate`` (zlib, or raw
as some clients send it) are decoded with the decoded size held to ``MAX_BODY_BYTES``
(``413`` past it: a small compressed body must not expand without bound); a body that is
not what its encoding says is ``400``; any other encoding, or several, is ``415``. All
are ``application/problem+json`` like every other error; handlers read the decoded body
with ``request.read()`` as before.
"""

from __future__ import annotations

import zlib
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from gateway.errors import MalformedInput, PayloadTooLarge, UnsupportedMediaType

# zlib's window bits for each accepted coding: gzip header, zlib header, raw deflate.
_GZIP: Final = 16 + zlib.MAX_WBITS
_ZLIB: Final = zlib.MAX_WBITS
_RAW: Final = -zlib.MAX_WBITS
DECODED: Final = {"gzip": (_GZIP,), "x-gzip": (_GZIP,), "deflate": (_ZLIB, _RAW)}
PASS_THROUGH: Final = frozenset({"", "identity"})


def decode_body(raw: bytes, encoding: str, limit: int) -> bytes:
    """``raw`` decoded from ``encoding`` (a key of :data:`DECODED`), at most ``limit`` bytes.

    Raises ``PayloadTooLarge`` past ``limit`` and ``MalformedInput`` for a body that is
    truncated, corrupt, or followed by anything but its own end.
    """
    failure = f"the body is not valid {encoding} data (is its Content-Encoding right?)"
    for wbits in DECODED[encoding]:
        decoder = zlib.decompressobj(wbits)
        try:
            body = decoder.decompress(raw, limit + 1)
            if len(body) <= limit and not decoder.unconsumed_tail:
                body += decoder.flush()
        except zlib.error:
            continue
        if len(body) > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge(f"the decoded body is larger than {limit} bytes")
        if not decoder.eof:
            raise MalformedInput(f"the {encoding} body is cut short")
        if decoder.unused_data:
            raise MalformedInput(f"the {encoding} body is followed by other data")
        return body
    raise MalformedInput(failure)


@web.middleware
async def content_encoding_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Decode a ``gzip``/``deflate`` body for the handler; refuse other encodings.

    A request without a body (a GET) passes whatever its ``Content-Encoding`` says.
    """
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()
    if encoding in PASS_THROUGH or not request.body_exists:
        return await handler(request)
    if encoding not in DECODED:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not accepted: send gzip, deflate or none"
        )
    # The handler sees the body as if sent plain: no Content-Encoding, and no
    # Content-Length (that of the encoded body; nothing here reads it).
    headers = CIMultiDict(request.headers)
    del headers[hdrs.CONTENT_ENCODING]
    headers.popall(hdrs.CONTENT_LENGTH, None)
    # Cloned before reading (aiohttp refuses after); the clone shares the stream, read
    # through the original, bounded by MAX_BODY_BYTES (413).
    try:
        decoded = request.clone(headers=headers)
    except UnicodeEncodeError as exc:
        # aiohttp keeps undecodable header bytes as surrogates and cannot write them back.
        raise MalformedInput("a request header is not valid UTF-8") from exc
    raw = await request.read()
    # What request.read() (and .json(), .post()) answer from once a body was read.
    decoded._read_bytes = decode_body(raw, encoding, request.client_max_size)
    return await handler(decoded)
