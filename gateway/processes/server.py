"""``tthc serve``: one HTTP process, or several sharing the port (``HTTP_WORKERS``).

With several workers the parent only supervises: each child binds the same address with
``SO_REUSEPORT`` so the kernel spreads connections, a child that dies is started again,
and a child that refuses to start (exit 2: configuration, unmigrated database) stops
them all, because starting it again would fail the same way.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import sys
import time
from multiprocessing.context import SpawnProcess
from types import FrameType

from aiohttp import web

from gateway.errors import ConfigError
from gateway.http.app import create_app
from gateway.logs import configure as configure_logging
from gateway.processes.zns_check import check_zns_templates
from gateway.settings import Settings

log = logging.getLogger(__name__)

_REFUSED = 2


def _tune_gc() -> None:
    # Objects alive at start-up (modules, compiled SQL, metadata) never need scanning
    # again, and fewer young-generation passes shorten the pauses that make p99.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_one(settings: Settings, *, reuse_port: bool = False) -> int:
    """Serve in this process until stopped; 2 if the gateway refuses to start."""
    _tune_gc()
    try:
        web.run_app(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            access_log=None,
            reuse_port=reuse_port,
            print=lambda msg: print(msg, file=sys.stderr),
        )
    except ConfigError as exc:
        print(f"tthc: {exc}", file=sys.stderr)
        return _REFUSED
    return 0


def _child(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    raise SystemExit(run_one(settings, reuse_port=True))


def warn_about_settings(settings: Settings) -> None:
    """Log, once at start-up, settings that weaken security on purpose for a while."""
    if settings.accept_v1_signatures:
        log.warning(
            "ACCEPT_V1_SIGNATURES is on: POST requests signed with the old sha256= form "
            "(body only, not bound to method and path) are still accepted; set it to false "
            "once every event source signs with v2="
        )


def serve(settings: Settings) -> int:
    """Run ``settings.http_workers`` processes and keep them running.

    Weak secrets of our own (short, or an example value) stop it before anything runs, and
    so does a ZNS template that disagrees with its mapping (gateway.processes.zns_check).
    """
    try:
        settings.check_secrets()
        check_zns_templates(settings)
    except ConfigError as exc:
        print(f"tthc: configuration error: {exc}", file=sys.stderr)
        return _REFUSED
    warn_about_settings(settings)
    if settings.http_workers == 1:
        return run_one(settings)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> SpawnProcess:
        process = context.Process(target=_child, args=(settings,), daemon=False)
        process.start()
        return process

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = [start() for _ in range(settings.http_workers)]
    log.info("serving with %d worker processes", len(workers))
    status = 0
    while not stopping:
        time.sleep(0.2)
        for index, process in enumerate(workers):
            if process.is_alive():
                continue
            if process.exitcode == _REFUSED:
                stopping, status = True, _REFUSED
                break
            log.error("worker %d exited with %s; starting it again", process.pid, process.exitcode)
            workers[index] = start()
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(15)
        if process.is_alive():
            process.kill()
    return status
