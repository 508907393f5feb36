"""Handoff's business metrics, emitted from workflow code through `workflow.metric_meter()`.

The worker's Temporal runtime exports them with its Prometheus exporter (see
`worker/metrics.py`), beside the SDK's own metrics. The meter skips replays, so each
event is counted once however often a history is replayed. Everything here is safe in
the workflow sandbox: names are constants and the helpers only touch the meter.
"""

from __future__ import annotations

from temporalio import workflow

#: Time spent in a stage, from entering it to leaving it (label `stage`).
STAGE_SECONDS = "handoff_stage_seconds"
#: Time from asking an approval tier to its decision (label `tier`, `decision`).
APPROVAL_LATENCY_SECONDS = "handoff_approval_latency_seconds"
#: Escalations of a wait past its SLA (label `kind`: stage, approval, exception...).
ESCALATIONS_TOTAL = "handoff_escalations_total"
#: Refused messages, signals and updates alike (label `message`).
REFUSALS_TOTAL = "handoff_refusals_total"

#: Histogram buckets in seconds: a minute up to a quarter (handoffs wait days).
DURATION_BUCKETS: tuple[float, ...] = (
    60,
    300,
    900,
    3_600,
    4 * 3_600,
    8 * 3_600,
    86_400,
    2 * 86_400,
    3 * 86_400,
    7 * 86_400,
    14 * 86_400,
    30 * 86_400,
    90 * 86_400,
)


def count_refusal(message: str) -> None:
    """Count one refused message (call where the workflow records a refusal)."""
    workflow.metric_meter().create_counter(
        REFUSALS_TOTAL, "Refused signals and updates, by message name."
    ).add(1, {"message": message})


def count_escalation(kind: str) -> None:
    """Count one escalation; `kind` is what escalated (`qualify`, `approval`, ...)."""
    workflow.metric_meter().create_counter(
        ESCALATIONS_TOTAL, "Waits escalated past their SLA, by kind."
    ).add(1, {"kind": kind})


def observe_stage(stage: str, seconds: float) -> None:
    """Record how long a deal spent in `stage` (call when it leaves the stage)."""
    workflow.metric_meter().create_histogram_float(
        STAGE_SECONDS, "Seconds a deal spent in a stage.", "s"
    ).record(max(seconds, 0.0), {"stage": stage})


def observe_approval_latency(seconds: float, tier: str = "", decision: str = "") -> None:
    """Record how long an approver took to decide a tier (call on the decision)."""
    attrs = {k: v for k, v in (("tier", tier), ("decision", decision)) if v}
    workflow.metric_meter().create_histogram_float(
        APPROVAL_LATENCY_SECONDS, "Seconds from asking an approval tier to its decision.", "s"
    ).record(max(seconds, 0.0), attrs)
