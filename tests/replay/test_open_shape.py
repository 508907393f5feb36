"""The shape of a handoff opened with one read (`workflows.kit.patches.OPEN_AT_ONCE`),
as its committed histories hold it: what it costs the server before it parks on the
approval ladder (issue 14), and what a handoff opened before costs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from workflows.kit.patches import IMPLIED, OPEN_AT_ONCE

HISTORIES = Path(__file__).with_name("histories")


def until_parked(stem: str) -> list[HistoryEvent]:
    """The events of a committed history up to the first timer (the handoff parked)."""
    path = HISTORIES / f"lead-to-cash-memory-{stem}.json"
    events = list(WorkflowHistory.from_json(path.stem, path.read_text()).events)
    first_timer = next(
        i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    )
    return events[: first_timer + 1]


def activities(events: list[HistoryEvent]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def patch_ids(events: list[HistoryEvent]) -> list[str]:
    return [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


def count(events: list[HistoryEvent], kind: EventType.ValueType) -> int:
    return sum(e.event_type == kind for e in events)


UPSERT = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
TASKS = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


def test_a_handoff_parked_from_the_crm_opens_with_one_read_and_one_marker() -> None:
    """The bench's parked shape: one activity reads the deal, its lines and its owner's
    manager; the run records one patch marker (and the core's one upsert with it), and
    Handoff's own two upserts (qualify, then the desk)."""
    events = until_parked("R4-parked_from_crm")
    assert activities(events) == [
        "crm.open_deal",
        "crm.write_back",  # qualify, its evidence already in: written as it always was
        "crm.write_back",  # into the desk
        "notify.request_approval",
    ]
    assert patch_ids(events) == [OPEN_AT_ONCE]
    assert count(events, UPSERT) == 3
    # the first task, then one per activity result (recorded on the time-skipping
    # server, which may add one empty task while the first activity runs; the dev
    # server's history of the same run has 33 events and 5 tasks)
    assert count(events, TASKS) <= 1 + len(activities(events)) + 1


@pytest.mark.parametrize("scenario", ["happy_path", "approval_parked", "quote_desk"])
def test_the_opening_costs_less_than_a_handoff_opened_before(scenario: str) -> None:
    """Against the same scenario recorded before (R3): two activities fewer (or one, for
    a run recorded before the owner's manager was read), fewer workflow tasks, fewer
    events, and one patch marker instead of one per patch reached."""
    before, after = until_parked(f"R3-{scenario}"), until_parked(f"R4-{scenario}")
    assert activities(after)[0] == "crm.open_deal"
    assert "crm.get_deal" in activities(before) and "crm.get_line_items" in activities(before)
    assert len(activities(before)) - len(activities(after)) >= 1
    assert count(after, TASKS) < count(before, TASKS)
    assert patch_ids(after) == [OPEN_AT_ONCE] and len(patch_ids(before)) >= 4
    assert count(after, UPSERT) < count(before, UPSERT)
    assert len(after) < len(before)


def test_no_committed_r4_history_records_a_marker_the_opening_takes_as_given() -> None:
    """However far a recorded R4 run went (exceptions, people and policy moves, CRM
    changes, calendars), it recorded no marker for an id in `IMPLIED`."""
    r4 = sorted(HISTORIES.glob("lead-to-cash-memory-R4-*.json"))
    assert r4
    for path in r4:
        events = list(WorkflowHistory.from_json(path.stem, path.read_text()).events)
        ids = patch_ids(events)
        assert ids[0] == OPEN_AT_ONCE, path.stem
        assert not set(ids) & IMPLIED, (path.stem, ids)


def test_implied_holds_every_patch_id_of_the_lead_to_cash_kit() -> None:
    """`IMPLIED` names the ids as the modules do: a renamed or new id of the kit that is
    missing from it would record its marker in every new run (or, worse, an id listed
    but spelled differently would never be taken as given)."""
    from workflows.kit.contracts import CONTRACT_REREAD
    from workflows.kit.crm_truth import CRM_MOVED_ONLY, CRM_TRUTH
    from workflows.kit.desk import APPROVALS_INLINE
    from workflows.kit.inbox import HANDLER_LOCK
    from workflows.kit.managers import OWNER_MANAGER_CRM
    from workflows.kit.people import PEOPLE_MOVES
    from workflows.kit.policy_move import POLICY_MOVES
    from workflows.kit.quote_lines import QUOTE_LINES
    from workflows.kit.status import PUBLISH_CHANGES
    from workflows.kit.waits import BUSINESS_CALENDAR, ESCALATION_LADDER

    kit = {
        CONTRACT_REREAD,
        CRM_MOVED_ONLY,
        CRM_TRUTH,
        APPROVALS_INLINE,
        HANDLER_LOCK,
        OWNER_MANAGER_CRM,
        PEOPLE_MOVES,
        POLICY_MOVES,
        QUOTE_LINES,
        PUBLISH_CHANGES,
        BUSINESS_CALENDAR,
        ESCALATION_LADDER,
    }
    assert kit == IMPLIED
    assert OPEN_AT_ONCE not in IMPLIED  # the one marker a new run records
