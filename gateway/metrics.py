"""Prometheus metrics, one registry per application (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    """The gateway's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "tthc_events_total",
            "Events received, by type and outcome",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.notices_created = Counter(
            "tthc_notices_created_total",
            "Notices written to the outbox, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.flags = Counter(
            "tthc_flags_total", "Audit flags raised, by rule", ["rule"], registry=self.registry
        )
        self.zalo_webhooks = Counter(
            "tthc_zalo_webhooks_total",
            "Zalo webhooks, by outcome (queued, duplicate, ignored, refused)",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "tthc_http_request_seconds",
            # The route label is the route's pattern (ops.timing_middleware), never the
            # path: /webhooks/sms/{provider}/{secret} must not put the secret here.
            "HTTP request duration, by route and status class",
            ["route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
