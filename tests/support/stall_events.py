"""A seeded set of stage events whose figures are worked out by hand in the tests.

Week 1 starts Monday 2026-11-02 00:00 UTC (T0); times are hours after T0.

- A (lead-to-cash 1001): qualify 0 → deal_desk 10 → close 30 → done 40.
- B (lead-to-cash 1002): qualify 2 → deal_desk 6, open; reminder at 20, escalation at 30.
- C (lead-to-cash 1003): qualify 1 → deal_desk 21 → lost in the CRM at 50.
- D (lead-to-cash 1004): qualify 170 → deal_desk 178, open, owned by an attacker-named
  owner and victor.
- E (renewal 1005): window 0 → usage 5, open.

Figures as of NOW (hour 200), by hand:
- qualify stays 10, 4, 20 (week 1) and 8 (week 2): week 1 p50 10 h (rank 2 of 3), p90
  20 h (rank 3); overall [4, 8, 10, 20]: p50 8 h (rank 2), p90 20 h (rank 4).
- deal_desk: A's 20 h only (C's was lost); close: A's 10 h.
- open deal_desk: B 194 h, D 22 h → p50 22 h, max 194 h; one under 1d, one over 7d.
- nudges at deal_desk: 1 reminder, 1 escalation. Cycle time: A, 40 h, week 1.
- conversion: qualify 4 entered, 4 advanced; deal_desk 4 entered, 1 advanced, 1 lost.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.stage_events import StageEvent

T0 = datetime(2026, 11, 2, tzinfo=UTC)
NOW = T0 + timedelta(hours=200)
EVIL = '<script>alert("x")</script>@evil.example'
HOUR = 3600.0


def ev(
    deal: str,
    hour: float,
    kind: str,
    stage: str = "",
    owners: tuple[str, ...] = (),
    waiting_on: str = "",
    *,
    handoff_type: str = "lead-to-cash",
    key: str | None = None,
) -> StageEvent:
    wid = f"{handoff_type}-hubspot-{deal}"
    return StageEvent.model_validate(
        {
            "key": key or f"{wid}:{kind}:{stage}:{hour}",
            "workflow_id": wid,
            "handoff_type": handoff_type,
            "crm": "hubspot",
            "deal_id": deal,
            "at": T0 + timedelta(hours=hour),
            "kind": kind,
            "stage": stage,
            "waiting_on": waiting_on,
            "owners": list(owners),
        }
    )


SAM, MAYA, VICTOR = "sam.rep@example.com", "maya.manager@example.com", "victor.vp@example.com"
APPROVAL = "discount approval (sales manager)"

EVENTS = [
    ev("1001", 0, "wait", "qualify", (SAM,), "evidence"),
    ev("1001", 10, "wait", "deal_desk", (MAYA,), APPROVAL),
    ev("1001", 30, "wait", "close", (SAM,), "contract signed"),
    ev("1001", 40, "done", "done"),
    ev("1002", 2, "wait", "qualify", (SAM,), "evidence"),
    ev("1002", 6, "wait", "deal_desk", (MAYA,), APPROVAL),
    ev("1002", 20, "reminder", "", (MAYA,)),
    ev("1002", 30, "escalation", "", (VICTOR,)),
    ev("1003", 1, "wait", "qualify", (SAM,), "evidence"),
    ev("1003", 3, "wait", "qualify", (SAM,), "evidence"),  # same stage: the stay goes on
    ev("1003", 21, "wait", "deal_desk", (MAYA,), APPROVAL),
    ev("1003", 50, "ended", ""),
    ev("1004", 170, "wait", "qualify", (SAM,), "evidence"),
    ev("1004", 178, "wait", "deal_desk", (EVIL, VICTOR), APPROVAL),
    ev("1005", 0, "wait", "window", (SAM,), "time", handoff_type="renewal"),
    ev("1005", 5, "wait", "usage", (SAM,), "usage evidence", handoff_type="renewal"),
]
