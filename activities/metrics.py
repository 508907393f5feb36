"""CRM metrics emitted from activities through `activity.metric_meter()`.

They flow through the worker runtime's Prometheus exporter with the SDK's own metrics.
Outside an activity (a unit test calling a method directly) the helpers do nothing.
`activities` must not import `workflows`, so the CRM metric names live here.
"""

from __future__ import annotations

from temporalio import activity

#: CRM write-backs by outcome (labels `crm`, `outcome`: ok, transient, permanent).
CRM_WRITES_TOTAL = "handoff_crm_writes_total"
#: CRM activity attempts after the first (label `crm`).
CRM_RETRIES_TOTAL = "handoff_crm_retries_total"


def count_crm_write(crm: str, outcome: str) -> None:
    """Count one CRM write-back attempt and how it ended."""
    if not activity.in_activity():
        return
    activity.metric_meter().create_counter(
        CRM_WRITES_TOTAL, "CRM write-backs, by CRM and outcome."
    ).add(1, {"crm": crm, "outcome": outcome})


def count_crm_retry(crm: str) -> None:
    """Count one retried CRM call, if this activity attempt is a retry."""
    if not activity.in_activity() or activity.info().attempt <= 1:
        return
    activity.metric_meter().create_counter(
        CRM_RETRIES_TOTAL, "CRM activity attempts after the first, by CRM."
    ).add(1, {"crm": crm})
