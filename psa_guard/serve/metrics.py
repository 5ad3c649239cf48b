"""Prometheus metrics of a server (``GET /metrics``), in a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 300)


@dataclass
class ServerMetrics:
    """Requests by application and status, actions by kind, latency, time to first token,
    tokens and queue depth."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("psa_guard_requests", "Chat completion requests.",
                                ["app", "status"], registry=r)
        self.actions = Counter("psa_guard_actions", "Guard actions taken, by stage.",
                               ["app", "stage", "action"], registry=r)
        self.latency = Histogram("psa_guard_request_seconds", "Time to the whole reply.",
                                 ["app", "stream"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("psa_guard_time_to_first_token_seconds",
                              "Time to the first released text.", ["app", "stream"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("psa_guard_tokens", "Tokens read and written.", ["app", "kind"],
                              registry=r)
        self.queue = Gauge("psa_guard_queue_depth", "Requests in the server now.", registry=r)
