"""Metrics: the worker's Temporal runtime exporter and the API's Prometheus series.

Two sources, two endpoints:

- The **worker** exports the SDK's metrics and Handoff's business metrics (emitted in
  `workflows/metrics.py` and `activities/metrics.py`) through the Temporal runtime's
  Prometheus exporter on `settings.metrics_port` (`make_runtime`).
- The **API** keeps its own `prometheus_client` registry (`ApiMetrics`): requests by
  route and status, latency, and refusals by typed code, served at its `/metrics`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from worker.settings import Settings
from workflows.metrics import APPROVAL_LATENCY_SECONDS, DURATION_BUCKETS, STAGE_SECONDS

#: Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsPortBusy(SystemExit):
    """The metrics port is taken: one line naming the port and the settings, exit 1."""


def make_runtime(settings: Settings, *, host: str | None = None) -> Runtime:
    """A Temporal runtime exporting worker metrics on `host:settings.metrics_port`.

    Pass it to `Client.connect(..., runtime=...)`; every worker on that client then
    exports through it. It binds `settings.metrics_host`, 127.0.0.1 unless told
    otherwise (a container or pod sets `HANDOFF_METRICS_HOST=0.0.0.0` so Prometheus can
    scrape it). A busy port raises `MetricsPortBusy`, never a traceback.
    """
    host = host or settings.metrics_host
    try:
        return _runtime(settings, host)
    except ValueError as exc:
        if "in use" not in str(exc).lower():
            raise
        raise MetricsPortBusy(
            f"handoff worker: metrics port {settings.metrics_port} on {host} is already in "
            "use; set HANDOFF_METRICS_PORT (or HANDOFF_METRICS_HOST) to a free one"
        ) from None


def _runtime(settings: Settings, host: str) -> Runtime:
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{host}:{settings.metrics_port}",
                histogram_bucket_overrides={
                    STAGE_SECONDS: list(DURATION_BUCKETS),
                    APPROVAL_LATENCY_SECONDS: list(DURATION_BUCKETS),
                },
            )
        )
    )


class ApiMetrics:
    """The API's series, in a registry of their own (one per app, so tests never clash)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "handoff_api_requests",
            "HTTP requests, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "handoff_api_request_seconds",
            "HTTP request latency, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "handoff_api_refusals",
            "Actions the workflows refused, by message and typed refusal code.",
            ["message", "code"],
            registry=self.registry,
        )
        self.link_refusals = Counter(
            "handoff_api_link_refusals",
            "Signed approval links refused, by why (tampered, expired, used, ...).",
            ["why"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def count_refusal(self, message: str, code: str) -> None:
        self.refusals.labels(message, code).inc()

    def count_link_refusal(self, why: str) -> None:
        self.link_refusals.labels(why).inc()

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
