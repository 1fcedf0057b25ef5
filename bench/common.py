"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_http(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    """Wait until ``url`` answers; fail at once if ``process`` (its server) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")
