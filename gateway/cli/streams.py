"""Standard streams for the command-line tools."""

from __future__ import annotations

import io
from typing import TextIO


def utf8(stream: TextIO) -> TextIO:
    """Make a standard stream speak UTF-8 whatever the locale (C locale in containers)."""
    if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower().replace("_", "-") not in (
        "utf-8",
        "utf8",
    ):
        stream.reconfigure(encoding="utf-8", errors="replace")
    return stream
