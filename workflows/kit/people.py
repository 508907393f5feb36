"""People changes inside one handoff: `reassign` (someone left: their work moves to
another for good) and `set_away` (out of office until a date, with a delegate).

Either records a stand-in in the state, so every later ask of the person (a tier, an
escalation, an exception's owner) goes to whoever stands in, and moves what is open now:
the wait's owner, the pending approval's approvers, the escalation levels still to
come, open exceptions and their clocks, and the CRM tasks Handoff opened (reassigned in
the CRM). Each move is one line of the audit trail, with who made it and why.

Who may: sales ops (`PEOPLE_ADMINS`) for anyone; a person for their own absence.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows.kit.clock import ClockState
from workflows.kit.dispatch import Handler, No
from workflows.kit.patches import patched
from workflows.messages import Email, Message, Reason
from workflows.names import Msg, Refusal
from workflows.policy_people import PEOPLE_ADMINS, StandIn

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: people's work moves to a stand-in (reassign, out of office).
PEOPLE_MOVES = "people-moves"


class ReassignIn(Message):
    """`reassign`: every open wait, approval and CRM task of `from_person` moves to
    `to_person`, and later asks of them too (they left)."""

    from_person: Email
    to_person: Email
    by: Email
    reason: Reason


class AwayIn(Message):
    """`set_away`: `person` is out of office until `until`; `delegate` acts meanwhile."""

    person: Email
    delegate: Email
    until: datetime
    by: Email
    reason: Reason = "out of office"


class People:
    """Stand-ins for one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def handlers(self) -> list[tuple[str, Handler]]:
        return [
            (Msg.REASSIGN, Handler(ReassignIn, self._check_reassign, self._reassign)),
            (Msg.SET_AWAY, Handler(AwayIn, self._check_away, self._away)),
        ]

    # -- checks ------------------------------------------------------------------------
    def _admin(self, by: str) -> bool:
        return self._h.is_in(by, list(PEOPLE_ADMINS))

    def _check_reassign(self, msg: ReassignIn) -> No | None:
        if msg.from_person == msg.to_person:
            return No(Refusal.INVALID, "to_person must be someone else")
        if not self._admin(msg.by):
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.by} may not reassign people's work (roles: {', '.join(PEOPLE_ADMINS)})",
            )
        return None

    def _check_away(self, msg: AwayIn) -> No | None:
        if msg.person == msg.delegate:
            return No(Refusal.INVALID, "delegate must be someone else")
        if msg.until.tzinfo is None:
            return No(Refusal.INVALID, "until: a date and time with its zone (ISO 8601)")
        if msg.until <= workflow.now():
            return No(Refusal.INVALID, "until: must be in the future")
        if msg.by != msg.person and not self._admin(msg.by):
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.by} may set only their own absence "
                f"(or be one of {', '.join(PEOPLE_ADMINS)})",
            )
        return None

    # -- effects -----------------------------------------------------------------------
    async def _reassign(self, msg: ReassignIn) -> str:
        stand_in = StandIn(to=msg.to_person, by=msg.by, reason=msg.reason)
        moved = await self._stand_in(msg.from_person, stand_in)
        return f"reassigned {msg.from_person} → {msg.to_person}: {moved}"

    async def _away(self, msg: AwayIn) -> str:
        stand_in = StandIn(to=msg.delegate, until=msg.until, by=msg.by, reason=msg.reason)
        moved = await self._stand_in(msg.person, stand_in)
        return (
            f"{msg.person} away until {msg.until:%Y-%m-%d %H:%M} UTC, {msg.delegate} acts: {moved}"
        )

    async def _stand_in(self, person: str, stand_in: StandIn) -> str:
        h, st = self._h, self._h.state
        patched(h, PEOPLE_MOVES)  # marks runs that may hold stand-ins
        st.stand_ins = {**st.stand_ins, person: stand_in}
        new = stand_in.to
        moved: list[str] = []

        def swap(people: list[str]) -> list[str]:
            out: list[str] = []
            for p in people:
                q = new if p == person else p
                if q not in out:
                    out.append(q)
            return out

        if st.waiting is not None and person in st.waiting.owner:
            st.waiting.owner = swap(st.waiting.owner)
            moved.append(f"the wait on {st.waiting.what}")
        pending = getattr(st, "pending_approval", None)
        if pending is not None and person in pending.approvers:
            pending.approvers = swap(pending.approvers)
            pending.needed = min(pending.needed, len(pending.approvers))
            moved.append(f"the {pending.tier} approval")
        if swap_clock(st.clock, person, new):
            moved.append("the escalation levels")
        for exc in st.open_exceptions():
            if person in exc.owner:
                exc.owner = swap(exc.owner)
                moved.append(f"the {exc.kind} exception")
            swap_clock(exc.clock, person, new)
        tasks = {k: new for k, t in st.open_tasks.items() if t.owner == person}
        for key in tasks:
            st.open_tasks[key].owner = new
        if tasks:
            moved.append(f"{len(tasks)} CRM task{'s' if len(tasks) > 1 else ''}")
        until = f" until {stand_in.until:%Y-%m-%d %H:%M} UTC" if stand_in.until else ""
        what = ", ".join(moved) if moved else "nothing open; later asks go to them"
        h.audit.record(
            "people", f"{person} → {new}{until} ({stand_in.reason}): {what}", stand_in.by
        )
        h.changed = True
        h.publish()
        if tasks:
            await h.crm.write(h.key("people", len(st.history)), reassign=tasks)
        if moved:
            name = st.deal.name if st.deal and st.deal.name else st.deal_id
            await h.crm.notify([new], f"You act for {person} on {name}", f"Moved to you: {what}.")
        return what


def swap_clock(clock: ClockState | None, person: str, new: str) -> bool:
    """Escalation targets of `clock`, now and in the levels to come, with `person`
    replaced; True when something changed."""
    if clock is None:
        return False
    changed = person in clock.escalate_to or any(person in level for level in clock.ladder)
    clock.escalate_to = [new if p == person else p for p in clock.escalate_to]
    clock.ladder = [[new if p == person else p for p in level] for level in clock.ladder]
    return changed
