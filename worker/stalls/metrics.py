"""The stall figures on `/metrics`, where they fit as gauges: per handoff type and stage,
never per owner (owners are people, and unbounded as label values).

Computed at scrape time from the store: open handoffs and their oldest age now; time in
stage, cycle time, nudges and conversion over the last `WINDOW` (28 days).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.stalls.figures import Filters, compute
from worker.stalls.store import StallStore

log = structlog.get_logger("handoff.stalls")

WINDOW = timedelta(days=28)


class StallCollector(Collector):
    """A Prometheus collector over the stage-event store (opened on first scrape)."""

    def __init__(self, store: Callable[[], StallStore]) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        open_ = GaugeMetricFamily(
            "handoff_stalls_open_handoffs",
            "Open handoffs by type and the stage they are in.",
            labels=["handoff_type", "stage"],
        )
        oldest = GaugeMetricFamily(
            "handoff_stalls_open_age_max_seconds",
            "The longest an open handoff has been in its stage, by type and stage.",
            labels=["handoff_type", "stage"],
        )
        in_stage = GaugeMetricFamily(
            "handoff_stalls_time_in_stage_seconds",
            "Time in stage of stays started in the last 28 days (nearest-rank p50, p90).",
            labels=["handoff_type", "stage", "quantile"],
        )
        cycle = GaugeMetricFamily(
            "handoff_stalls_cycle_time_seconds",
            "Lead-to-cash cycle time of handoffs finished in the last 28 days (p50, p90).",
            labels=["handoff_type", "quantile"],
        )
        nudges = GaugeMetricFamily(
            "handoff_stalls_nudges",
            "Reminders and escalations sent in the last 28 days, by type and stage.",
            labels=["handoff_type", "stage", "kind"],
        )
        conversion = GaugeMetricFamily(
            "handoff_stalls_conversion_ratio",
            "Of handoffs started in the last 28 days that entered a stage, the share that "
            "moved on.",
            labels=["handoff_type", "stage"],
        )
        try:
            store = self._store()
            for t in store.handoff_types():
                events = store.read(handoff_type=t)
                fig = compute(events, Filters(handoff_type=t), now)
                recent = compute(events, Filters(handoff_type=t, since=now - WINDOW), now)
                for a in fig.aging:
                    open_.add_metric([t, a.stage], a.open)
                    oldest.add_metric([t, a.stage], a.max_s)
                for s in recent.time_in_stage:
                    if s.week is None:
                        in_stage.add_metric([t, s.stage, "0.5"], s.p50_s)
                        in_stage.add_metric([t, s.stage, "0.9"], s.p90_s)
                for c in recent.cycle_time:
                    if c.week is None:
                        cycle.add_metric([t, "0.5"], c.p50_s)
                        cycle.add_metric([t, "0.9"], c.p90_s)
                for n in recent.nudges:
                    nudges.add_metric([t, n.stage, "reminder"], n.reminders)
                    nudges.add_metric([t, n.stage, "escalation"], n.escalations)
                for v in recent.conversion:
                    conversion.add_metric([t, v.stage], v.rate)
        except Exception as exc:  # a store that is down must not break /metrics
            log.warning("stall metrics unavailable", error=type(exc).__name__)
        yield from (open_, oldest, in_stage, cycle, nudges, conversion)
