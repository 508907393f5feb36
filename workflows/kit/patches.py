"""`workflow.patched` for handoff parts: one marker for a run opened on today's code.

Each change of a handoff's commands sits behind its own `workflow.patched` id, so runs
opened before it keep replaying. Every id that is called records a marker in a fresh
run, and the SDK core adds a `TemporalChangeVersion` search-attribute upsert with each:
two history events per id, ten before a lead-to-cash handoff parked on its approval.

A run that opens with the one-read opening (`OPEN_AT_ONCE`, recorded as it starts,
before its first task handles any message) runs code that holds every change in
`IMPLIED`: it keeps the id in its state (`opened_with`, which survives continue-as-new)
and `patched()` answers true for those without recording their markers. A run opened
before records them as it always did: `workflow.patched(OPEN_AT_ONCE)` is false when its
history has no such marker, so its state never says so.

A later change calls `patched(h, NEW_ID)` too but leaves its id out of `IMPLIED`, so
runs opened on this code record its marker when they reach it (one that did would not
replay if the id joined `IMPLIED` later); only a new opening id may take it as given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow
    from workflows.kit.state import HandoffState

#: `workflow.patched` id: the opening reads the deal, its quote lines and its owner's
#: manager in one activity (`crm.open_deal`), and the run takes `IMPLIED` as given.
OPEN_AT_ONCE = "open-at-once"

#: Every id a run opened with `OPEN_AT_ONCE` takes as given (the lead-to-cash kit's ids,
#: as each module names them; `tests/replay/test_patching.py` checks they match).
IMPLIED = frozenset(
    {
        "handler-lock",
        "quote-lines",
        "escalation-ladder",
        "business-calendar",
        "publish-changes",
        "approvals-inline",
        "crm-truth",
        "crm-moved-only",
        "contract-reread",
        "owner-manager-crm",
        "policy-moves",
        "people-moves",
    }
)


def patched(h: HandoffWorkflow, patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, true without a marker for a run opened on this code."""
    st = getattr(h, "state", None)
    if patch_id in IMPLIED and st is not None and opened_at_once(st):
        return True
    return workflow.patched(patch_id)


def open_at_once(st: HandoffState) -> bool:
    """Called once, as a fresh run starts (in `@workflow.init`, before any message of its
    first task is handled): does it open with one read, and take `IMPLIED` as given?"""
    if workflow.patched(OPEN_AT_ONCE):
        st.opened_with = OPEN_AT_ONCE
    return opened_at_once(st)


def opened_at_once(st: HandoffState) -> bool:
    return st.opened_with == OPEN_AT_ONCE
