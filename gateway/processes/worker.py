"""``tthc worker``: runs chat jobs, then delivery jobs (urgent lane first), and the cron.

The worker is RQ's ``SimpleWorker`` (jobs run in the worker process: a job handles a
batch of notices, so the per-job cost is spread) with RQ's scheduler for retries at a
later time. The cron — the relay every few seconds, the audit sweep every 30 seconds, the
deadline sweep every minute, the consultation reminders every five minutes, the retention
job (erasing personal data older than ``RETENTION_DAYS``) every day — is RQ's
``CronScheduler`` in a child process; several workers may each run one, the jobs being
idempotent.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from multiprocessing.context import SpawnProcess

from redis import Redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler

from gateway.chat.queue import chat_queue_name
from gateway.delivery.queues import queue_names
from gateway.errors import ConfigError
from gateway.logs import configure as configure_logging
from gateway.processes.zns_check import check_zns_templates
from gateway.settings import Settings

log = logging.getLogger(__name__)

RELAY_SECONDS = 5
AUDIT_SECONDS = 30
SWEEP_SECONDS = 60
CONSULTATION_SECONDS = 300
RETENTION_SECONDS = 86400


def _cron(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    from gateway.processes import jobs

    scheduler = CronScheduler(connection=Redis.from_url(settings.redis_url))
    urgent, bulk = queue_names(settings)
    scheduler.register(jobs.relay, queue_name=urgent, interval=RELAY_SECONDS)
    scheduler.register(jobs.sweep_deadlines, queue_name=urgent, interval=SWEEP_SECONDS)
    # Auditing is bookkeeping: on the bulk lane, so a long catch-up never delays a notice.
    scheduler.register(jobs.audit_sweep, queue_name=bulk, interval=AUDIT_SECONDS)
    scheduler.register(jobs.remind_consultations, queue_name=bulk, interval=CONSULTATION_SECONDS)
    # Erasure is bookkeeping too; once a day (at start, then every 24 h) is precise enough.
    scheduler.register(jobs.retention, queue_name=bulk, interval=RETENTION_SECONDS)
    scheduler.start()  # type: ignore[no-untyped-call]


def start_cron(settings: Settings) -> SpawnProcess:
    process = multiprocessing.get_context("spawn").Process(
        target=_cron, args=(settings,), name="tthc-cron", daemon=True
    )
    process.start()
    return process


def run(settings: Settings, *, burst: bool = False, cron: bool = True) -> int:
    """Work until stopped (or, with ``burst``, until the queues are empty).

    Weak secrets of our own (short, or an example value) stop it with status 2 first, and
    so does a ZNS template that disagrees with its mapping (gateway.processes.zns_check).
    """
    try:
        settings.check_secrets()
        check_zns_templates(settings)
    except ConfigError as exc:
        print(f"tthc: configuration error: {exc}", file=sys.stderr)
        return 2
    redis = Redis.from_url(settings.redis_url)
    names = [chat_queue_name(settings), *queue_names(settings)]
    queues = [Queue(name, connection=redis) for name in names]
    cron_process = start_cron(settings) if cron and not burst else None
    try:
        worker = SimpleWorker(queues, connection=redis)
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        if cron_process is not None and cron_process.is_alive():
            cron_process.terminate()
            cron_process.join(10)
    return 0
