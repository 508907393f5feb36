"""The terms under approval: `update_terms` messages, their wording and real margin.

New terms bump `terms_version`, which ends a running approval round; the ladder then
asks only the tiers the new terms affect. After a rejection, a recall or an exhausted
ladder, the deal owner proposes new terms (`await_new_terms`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from workflows.kit.dispatch import Handler, No
from workflows.kit.ladder import ApprovalOutcome, missing_steps
from workflows.kit.state import DeskState, Wait
from workflows.messages import TermsIn
from workflows.names import Msg, Refusal, Stage, WaitingOn
from workflows.quote import margin_text, metric, with_lines
from workflows.records import Terms as TermsModel

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow


class TermsPart:
    """The terms of one handoff; `fixed()` says why they can no longer change, or None."""

    def __init__(
        self, h: HandoffWorkflow, state: DeskState, fixed: Callable[[], str | None]
    ) -> None:
        self._h, self._st, self.fixed = h, state, fixed

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.UPDATE_TERMS, Handler(TermsIn, self._check, self._apply))]

    def text(self) -> str:
        t = self._st.terms
        lines = f" over {len(t.lines)} lines" if t.lines else ""
        return (
            f"{t.amount:,.2f} {self._h.policy.currency} at {t.discount_percent:g}% discount" + lines
        )

    def margin(self) -> float:
        return self._st.terms.margin_percent(self._h.policy.discounts.default_cost_ratio)

    def margin_text(self) -> str:
        """The real margin in words, naming where its cost comes from."""
        return margin_text(self._st.terms, self._h.policy.discounts.default_cost_ratio)

    def rule_text(self, tier: str) -> str:
        """What a quote rule checks, in words ("" for a discount tier)."""
        rule = next((r for r in self._h.policy.quote_rules if r.name == tier), None)
        if rule is None:
            return ""
        value = metric(self._st.terms, rule.metric, self._h.policy.discounts.default_cost_ratio)
        limit = f"above {rule.above:g}" if rule.above is not None else f"below {rule.below:g}"
        shown = "-" if value is None else f"{value:g}"
        return rule.description or f"{rule.metric} {shown} is {limit}"

    def _check(self, msg: TermsIn) -> No | None:
        if (fixed := self.fixed()) is not None:
            return No(Refusal.TERMS_FIXED, fixed)
        h = self._h
        allowed = {*h.people("deal_owner"), *h.people("sales_manager")}
        if msg.by not in allowed:
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.by} may not change terms; allowed: {', '.join(sorted(allowed))}",
            )
        if msg.discount_percent is None and msg.amount is None:
            return No(Refusal.INVALID, "give discount_percent and/or amount")
        if self._new(msg) == self._st.terms:
            return No(Refusal.DUPLICATE, "terms are unchanged")
        return None

    def _new(self, msg: TermsIn) -> TermsModel:
        changes = {"discount_percent": msg.discount_percent, "amount": msg.amount}
        if self._st.quote:  # the discount is the deal's, on top of the lines' own
            changes["deal_discount_percent"] = changes.pop("discount_percent")
        new = self._st.terms.model_copy(update={k: v for k, v in changes.items() if v is not None})
        return with_lines(new, new.lines) if self._st.quote else new

    async def _apply(self, msg: TermsIn) -> str:
        return await self.apply(self._new(msg), msg.by)

    def current(self) -> TermsModel:
        return self._st.terms

    def with_changes(self, changes: dict[str, float | None]) -> TermsModel:
        return self._st.terms.model_copy(update=changes)

    async def apply(self, new: TermsModel, by: str) -> str:
        """New terms: the running round ends, and only the tiers they affect are asked."""
        h, st = self._h, self._st
        asked = st.pending_approval
        st.terms, st.terms_by = new, by
        st.terms_version += 1
        h.audit.record("terms", self.text(), by=by)
        if h.desk is not None:
            await h.desk.tiers.settled(asked)
        manager = h.managers.crm_manager()
        steps = missing_steps(h.policy, st.terms, st.approvals, st.owner_email, st.quote, manager)
        return f"terms now {self.text()}; to approve: {[s.tier for s in steps] or 'none'}"

    async def await_new_terms(self, outcome: ApprovalOutcome) -> None:
        """Rejected or recalled: the owner must propose new terms."""
        h = self._h
        version, rule = self._st.terms_version, h.policy.stage(Stage.DEAL_DESK)
        why = (
            f"{outcome.result} by {outcome.by}: {outcome.reason}" if outcome.by else outcome.result
        )
        await h.waits.wait_for(
            Wait(
                key=f"deal_desk:r{outcome.round}:terms",
                on=WaitingOn.TERMS_UPDATE,
                what=f"new terms ({why})",
                owner=h.people(rule.owner),
                ready=lambda: self._st.terms_version != version,
                clock=rule,
                task=f"Discount {why}. Propose new terms",
            )
        )
