"""What a write-back tells the stall store: its kind from the write's key and fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.stage_events import StageEvent, approval_nudge, from_write_back, handoff_type_of
from connectors.base import TaskSpec, WriteBack

AT = datetime(2026, 11, 2, tzinfo=UTC)
WID = "lead-to-cash-hubspot-1001"


def event_of(
    key: str, fields: dict[str, str | None] | None = None, owners: tuple[str, ...] = ()
) -> StageEvent | None:
    tasks = [TaskSpec(subject="s", owner_email=o, key=f"{key}:task:{o}") for o in owners]
    batch = WriteBack(deal_id="1001", key=key, fields=fields or {}, tasks=tasks)
    return from_write_back(batch, workflow_id=WID, crm="hubspot", at=AT)


@pytest.mark.parametrize(
    ("key", "fields", "kind"),
    [
        (
            f"{WID}:qualify",
            {"handoff_stage": "qualify", "handoff_status": "waiting on evidence"},
            "wait",
        ),
        (f"{WID}:qualify:remind", {}, "reminder"),
        (f"{WID}:qualify:escalate", {}, "escalation"),
        (f"{WID}:qualify:escalate:2", {}, "escalation"),
        (f"{WID}:done", {"handoff_stage": "done", "handoff_status": "complete"}, "done"),
        (f"{WID}:ended:lost", {}, "ended"),
        (f"{WID}:exception:1:credit_hold", {}, None),
        (f"{WID}:owner:4", {}, None),
    ],
)
def test_the_kind_comes_from_the_key_and_fields(
    key: str, fields: dict[str, str | None], kind: str | None
) -> None:
    """Transitions, nudges, the end and a loss are events; notes and task moves are not."""
    event = event_of(key, fields)
    assert (event.kind if event else None) == kind


def test_a_wait_keeps_stage_what_and_owners() -> None:
    """The stage, what is awaited (without "waiting on") and each owner of the wait."""
    event = event_of(
        f"{WID}:deal_desk:r1:sales_manager",
        {
            "handoff_stage": "deal_desk",
            "handoff_status": "waiting on discount approval (sales manager)",
            "handoff_owner": "maya.manager@example.com, victor.vp@example.com",
        },
    )
    assert event is not None
    assert (event.handoff_type, event.crm, event.deal_id, event.at) == (
        "lead-to-cash",
        "hubspot",
        "1001",
        AT,
    )
    assert event.stage == "deal_desk"
    assert event.waiting_on == "discount approval (sales manager)"
    assert event.owners == ["maya.manager@example.com", "victor.vp@example.com"]


def test_an_escalation_names_whom_its_tasks_go_to() -> None:
    """An escalation's owners are its tasks' owners (the people escalated to)."""
    event = event_of(f"{WID}:qualify:escalate", {}, owners=("maya.manager@example.com",))
    assert event is not None and event.owners == ["maya.manager@example.com"]


def test_handoff_type_from_the_workflow_id() -> None:
    """The public id `<type>-<crm>-<deal>`, even when the type or deal has dashes."""
    assert handoff_type_of("renewal-salesforce-006-x", "salesforce", "006-x") == "renewal"
    assert handoff_type_of("odd-id", "hubspot", "1") == "odd-id"


def test_only_approval_reminders_and_escalations_are_nudges() -> None:
    """A first ask or a delegation is not a nudge; a reminder is filed at the deal desk."""

    def nudge_for(reason: str) -> StageEvent | None:
        return approval_nudge(
            reason=reason,
            workflow_id=WID,
            step="run:7",
            crm="hubspot",
            deal_id="1001",
            at=AT,
            approvers=["maya.manager@example.com"],
        )

    assert nudge_for("approval requested") is None
    nudge = nudge_for("reminder")
    assert nudge is not None
    assert (nudge.kind, nudge.stage, nudge.key) == (
        "reminder",
        "deal_desk",
        f"{WID}:approval:run:7",
    )
