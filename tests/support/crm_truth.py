"""What the CRM-truth tests share (tests/integration/test_crm_truth_hubspot.py and
test_crm_truth_salesforce.py): the deal's people and fields, a wait on a read, and the
check that a closed handoff has nothing left that could write to the deal.

One module per CRM, so under pytest-xdist (`loadscope` keeps a module on one worker)
the two CRMs' stacks run side by side: as one module they were the suite's longest."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from support.processes import Stack

OWNER = "sam.rep@example.com"
#: Every field the sales → ops contract needs, except site_notes.
CONTRACT_BUT_SITE_NOTES = {
    "scope": "Two floors",
    "start_date": "2026-12-01",
    "primary_contact": "ada@umbrella.example",
    "promised": "Keys on day one",
}
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")

ACTIVITY_SCHEDULED = "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
#: The events that end a scheduled activity (its last attempt finished).
ACTIVITY_ENDED = {
    f"EVENT_TYPE_ACTIVITY_TASK_{end}" for end in ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELED")
}


def assert_nothing_left_to_write(s: Stack, workflow_id: str) -> None:
    """The handoff's latest run is closed, and every activity it scheduled ended before
    it closed: no Handoff code is left that could write to the deal (only a handoff's own
    activities write to it; the webhook ingress and the change feed only signal)."""
    shown = s.temporal("workflow", "show", "--workflow-id", workflow_id, "--output", "json")
    events = json.loads(shown.stdout)["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", events[-1]
    scheduled = {e["eventId"] for e in events if e["eventType"] == ACTIVITY_SCHEDULED}
    ended = {
        attrs["scheduledEventId"]
        for e in events
        if e["eventType"] in ACTIVITY_ENDED
        for attrs in [next(v for k, v in e.items() if k.endswith("EventAttributes"))]
    }
    assert scheduled and scheduled == ended, (scheduled, ended)


def wait_for(read: Any, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not check(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.3)
    return value
