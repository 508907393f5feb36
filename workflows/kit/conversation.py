"""The deal-desk conversation: an approver asks the rep a question, the rep answers.

`request_info` (from an approver of the pending tier or rule, never from the deal's
requester) ends the tier's wait for now: the handoff waits on the deal owner, with the
policy's `info_request` SLA (reminder, escalation), a CRM task and a notice. `answer_info`
(from the deal owner) sends the answer back to the same approver, writes the question and
the answer as a CRM note, and asks the same tier again with a fresh clock. A decision or
new terms while a question is open close it. Questions and answers are in the audit trail
and in `status.conversation`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows.kit.dispatch import Handler, No
from workflows.kit.state import DeskState, Wait
from workflows.messages import InfoAnswerIn, InfoRequestIn
from workflows.names import Msg, Refusal, WaitingOn
from workflows.records import InfoExchange

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow
    from workflows.kit.tiers import TierWaits

#: Questions kept per handoff (older ones leave `status`; the audit trail keeps them).
KEPT = 50
#: Questions one tier of one round may ask: beyond, decide.
PER_TIER = 5


class Conversation:
    """Questions from approvers to the rep (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow, state: DeskState, tiers: TierWaits) -> None:
        self._h, self._st, self._tiers = h, state, tiers

    def handlers(self) -> list[tuple[str, Handler]]:
        return [
            (Msg.REQUEST_INFO, Handler(InfoRequestIn, self._check_ask, self._ask)),
            (Msg.ANSWER_INFO, Handler(InfoAnswerIn, self._check_answer, self._answer)),
        ]

    def open(self) -> InfoExchange | None:
        """The open question, if any."""
        last = self._st.conversation[-1] if self._st.conversation else None
        return last if last is not None and last.open else None

    def close(self, why: str) -> None:
        """Close an open question without an answer (decided, new terms, recalled)."""
        if (q := self.open()) is not None:
            q.closed = why
            self._h.audit.record("approval", f"question from {q.approver} closed: {why}")

    def answered(self, rnd: int, tier: str) -> int:
        """Answered questions of one tier of one round (each re-asks the tier)."""
        return sum(
            1 for q in self._st.conversation if q.round == rnd and q.tier == tier and q.answer
        )

    # -- request_info ------------------------------------------------------------------
    def _check_ask(self, msg: InfoRequestIn) -> No | None:
        st, p = self._st, self._st.pending_approval
        if p is None or (not self._tiers.asking and self.open() is None):
            return No(Refusal.NOT_PENDING, "no approval is pending: there is nothing to ask")
        if msg.approver not in p.approvers:
            asked = ", ".join(p.approvers)
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.approver} is not an approver of the {p.tier} tier (asked: {asked})",
            )
        if (q := self.open()) is not None:
            return No(Refusal.DUPLICATE, f"{q.approver}'s question is still open")
        mine = [q for q in st.conversation if q.round == p.round and q.tier == p.tier]
        if len(mine) >= PER_TIER:
            return No(Refusal.TOO_LARGE, f"{PER_TIER} questions on the {p.tier} tier: decide")
        if msg.link_id is not None and msg.link_id in st.used_links:
            return No(Refusal.DUPLICATE, "this link has already been used")
        return None

    async def _ask(self, msg: InfoRequestIn) -> str:
        h, st, p = self._h, self._st, self._st.pending_approval
        assert p is not None
        st.conversation = [
            *st.conversation[-(KEPT - 1) :],
            InfoExchange(
                round=p.round,
                tier=p.tier,
                approver=msg.approver,
                question=msg.question,
                asked_at=workflow.now(),
            ),
        ]
        if msg.link_id is not None:
            st.used_links = [*st.used_links, msg.link_id]
        h.audit.record("approval", f"{p.tier}: question to the rep — {msg.question}", msg.approver)
        await workflow.wait_condition(self._moved(WaitingOn.INFO_REQUEST))
        owner = ", ".join(h.people("deal_owner"))
        return f"question sent to {owner}; the {p.tier} tier waits on the answer"

    # -- answer_info -------------------------------------------------------------------
    def _check_answer(self, msg: InfoAnswerIn) -> No | None:
        if self.open() is None:
            return No(Refusal.NOT_PENDING, "no deal-desk question is open")
        owner = self._h.people("deal_owner")
        if msg.by not in owner:
            return No(
                Refusal.NOT_AUTHORISED,
                f"only the deal owner ({', '.join(owner)}) answers the deal desk",
            )
        return None

    async def _answer(self, msg: InfoAnswerIn) -> str:
        h, q = self._h, self.open()
        assert q is not None
        q.answer, q.answered_by, q.answered_at = msg.answer, msg.by, workflow.now()
        h.audit.record("approval", f"{q.tier}: answer to {q.approver} — {msg.answer}", msg.by)
        n = len(self._st.conversation)
        await h.crm.write(
            h.key("info", q.round, q.tier, n),
            notes=[
                f"Deal desk question ({q.tier}) from {q.approver}: “{q.question}”\n"
                f"Answer from {msg.by}: “{msg.answer}”"
            ],
        )
        await h.crm.notify(
            [q.approver],
            f"Answer on {self._deal_name()}",
            f"You asked: {q.question}\n{msg.by} answers: {msg.answer}\n"
            f"The {q.tier} approval waits on you again.",
        )
        await workflow.wait_condition(self._moved(WaitingOn.DISCOUNT_APPROVAL))
        return f"answer sent to {q.approver}; the {q.tier} tier is asked again"

    # -- the wait ----------------------------------------------------------------------
    async def await_answer(self, rnd: int, tier: str, over: Callable[[], bool]) -> None:
        """The handoff waits on the deal owner's answer to the open question (or until
        the tier is decided, recalled or superseded meanwhile)."""
        h, q = self._h, self.open()
        if q is None or over():
            return
        owner = h.people("deal_owner")
        await h.waits.wait_for(
            Wait(
                key=f"deal_desk:r{rnd}:{tier}:q{len(self._st.conversation)}",
                on=WaitingOn.INFO_REQUEST,
                what=f"an answer to {q.approver} ({tier}): {q.question}",
                owner=owner,
                ready=lambda: self.open() is None or over(),
                clock=h.policy.info_request,
                task=f"Deal desk question from {q.approver}: {q.question}",
                on_start=lambda: h.crm.notify(
                    owner,
                    f"Deal desk question on {self._deal_name()}",
                    f"{q.approver} asks: {q.question}\nAnswer with `handoff answer`, the API "
                    "or the deal page; the approval waits on your answer.",
                ),
            )
        )

    def _moved(self, on: WaitingOn) -> Callable[[], bool]:
        st, h = self._st, self._h

        def moved() -> bool:
            waiting = st.waiting
            return (
                not self._tiers.running
                or (waiting is not None and waiting.on == on)
                or bool(h.exceptions.holding())
                or st.pending_approval is None
            )

        return moved

    def _deal_name(self) -> str:
        st = self._st
        return st.deal.name if st.deal and st.deal.name else st.deal_id
