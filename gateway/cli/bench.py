"""``tthc bench``: benchmark tools that live in the repository checkout (``bench/``).

``tthc bench seed [--dossiers N] …`` runs ``bench/seed.py``: a million simulated
dossiers in a fresh SQLite file and PostgreSQL schema, with the look-up, deadline sweep
and statistics figures. The ``bench`` package is not installed with the gateway; this
finds it next to the installed ``gateway`` package (an editable install or a checkout).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

TOOLS = {"seed": "bench.seed"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TOOLS:
        print(f"usage: tthc bench {{{','.join(TOOLS)}}} [options]", file=sys.stderr)
        return 2
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "bench" / "__init__.py").exists():
        print("tthc: bench/ is in the repository checkout; run this from one", file=sys.stderr)
        return 2
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    tool: Callable[[list[str]], int] = importlib.import_module(TOOLS[argv[0]]).main
    return tool(argv[1:])
