"""Standard streams and argument parsing shared by the command-line tools."""

from __future__ import annotations

import argparse
import io
from argparse import Namespace
from collections.abc import Sequence
from typing import TextIO


def utf8(stream: TextIO) -> TextIO:
    """Make a standard stream speak UTF-8 whatever the locale (C locale in containers)."""
    if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower().replace("_", "-") not in (
        "utf-8",
        "utf8",
    ):
        stream.reconfigure(encoding="utf-8", errors="replace")
    return stream


def parse_or_exit_code(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> Namespace | int:
    """The parsed arguments (``argv`` None: the process's own), or the exit code once
    argparse has printed the usage or the help, so a subcommand returns it instead of
    exiting the process."""
    try:
        return parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
