"""The write-backs of one completed lead-to-cash handoff, as `workflows.kit.writeback`
sends them today (recorded from `tests/workflows/test_happy_path.py`): seven
transitions, each with the stage and status fields, six with notes, five with a task.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import FieldValue, NoteSpec, TaskSpec, WriteBack

REP, OPS, BILLING = "sam.rep@example.com", "olga.ops@example.com", "bill.billing@example.com"
STATUS = ("handoff_stage", "handoff_status", "handoff_owner", "handoff_due_at")

#: (step, stage, owner of the wait, extra fields, notes, task subject or None)
STEPS: list[tuple[str, str, str, dict[str, FieldValue], int, str | None]] = [
    ("qualify", "qualify", REP, {}, 0, "Prove need, budget, decision maker and timeline"),
    (
        "deal_desk:r1:sales_manager",
        "deal_desk",
        "maya.manager@example.com",
        {"crm_stage": "qualified"},
        1,
        None,
    ),
    (
        "close:t0",
        "close",
        REP,
        {"approved_discount": 30, "real_margin": 0.41, "crm_stage": "negotiation"},
        1,
        "Get the contract signed",
    ),
    ("sales_to_ops:accept", "sales_to_ops", OPS, {"crm_stage": "closed_won"}, 1, "Accept it"),
    ("delivery", "delivery", OPS, {}, 1, "Confirm delivery"),
    ("cash", "cash", BILLING, {}, 1, "Collect the payment"),
]


def lead_to_cash_writes(deal_id: str, workflow: str) -> list[WriteBack]:
    """The seven write-backs of one handoff of `deal_id`, keyed by `workflow`."""
    due = datetime(2026, 12, 14, 9, tzinfo=UTC)
    batches = []
    for i, (step, stage, owner, extra, notes, task) in enumerate(STEPS):
        key = f"{workflow}:{step}"
        fields: dict[str, FieldValue] = {
            "handoff_stage": stage,
            "handoff_status": f"waiting on {stage}",
            "handoff_owner": owner,
            "handoff_due_at": (due + timedelta(days=i)).isoformat(),
            **extra,
        }
        batches.append(
            WriteBack(
                deal_id=deal_id,
                key=key,
                fields=fields,
                notes=[
                    NoteSpec(body=f"{stage}: evidence {n}", key=f"{key}:note:{n}")
                    for n in range(notes)
                ],
                tasks=[
                    TaskSpec(subject=task, owner_email=owner, due_at=due, key=f"{key}:task:{owner}")
                ]
                if task
                else [],
            )
        )
    done = f"{workflow}:done"
    batches.append(
        WriteBack(
            deal_id=deal_id,
            key=done,
            fields={
                "handoff_stage": "done",
                "handoff_status": "complete",
                "handoff_owner": "",
                "handoff_due_at": None,
            },
            notes=[
                NoteSpec(body="cash: paid", key=f"{done}:note:0"),
                NoteSpec(body="Handoff complete", key=f"{done}:note:1"),
            ],
        )
    )
    return batches
