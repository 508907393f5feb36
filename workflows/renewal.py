"""`RenewalExpansion`: keep the customer, grow the account, built only from the kit.

Process: when the renewal window opens (notice days before the contract ends), account
management confirms usage with evidence; if usage shows room to expand, the expansion
goes back to sales with its context; new terms (a price increase or a discount) go
through the same approval ladder as new business; the renewal is signed before the
contract ends, or it escalates. Every step is written back to the CRM.

Started on its own (`handoff renewal start <deal>`) or from a closed lead-to-cash,
whose terms and approvals it carries forward. Messages: those of lead-to-cash (see
`workflows.names.Msg`); query `status`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from connectors.mapping import DealField

from workflows.kit.clock import parse_date
from workflows.kit.desk import ApprovalDesk
from workflows.kit.handoff import HandoffWorkflow
from workflows.kit.state import DeskState
from workflows.kit.terms import TermsPart
from workflows.messages import DealStatus
from workflows.options import MAX_HISTORY_EVENTS
from workflows.policy import Clock, RenewalPolicy, SharedPolicy, StagePolicy
from workflows.records import ApprovalRecord, Terms

#: `workflow.patched` id of the heads-up task when the window opens (see
#: docs/adding-a-handoff.md, "Changing a running workflow").
WINDOW_HEADS_UP = "renewal-window-heads-up"


class RenewalStage(StrEnum):
    WINDOW = "window"
    USAGE = "usage"
    PRICING = "pricing"
    SIGNATURE = "signature"
    DONE = "done"


class RenewalState(DeskState):
    contract_end: datetime | None = None


class RenewalInput(BaseModel):
    crm: str
    deal_id: str
    policy: SharedPolicy
    policy_version: str
    from_workflow_id: str | None = None
    terms: Terms | None = None
    approvals: list[ApprovalRecord] = []
    state: RenewalState | None = None
    max_history_events: int = MAX_HISTORY_EVENTS


@workflow.defn
class RenewalExpansion(HandoffWorkflow):
    """Renewal and expansion of one customer deal (see the module docstring)."""

    state: RenewalState
    desk: ApprovalDesk
    stage_order = tuple(RenewalStage)
    has_ladder = True

    @workflow.init
    def __init__(self, inp: RenewalInput) -> None:
        super().__init__(inp.policy, inp.policy_version, inp.max_history_events)
        self.state = inp.state or RenewalState(
            crm=inp.crm,
            deal_id=inp.deal_id,
            stage=RenewalStage.WINDOW,
            stage_since=workflow.now(),
            terms=inp.terms or Terms(),
        )
        self.desk = ApprovalDesk(self, self.state, TermsPart(self, self.state, self._terms_fixed))

    @property
    def rules(self) -> RenewalPolicy:
        return self.policy.renewal or RenewalPolicy()

    @workflow.run
    async def run(self, inp: RenewalInput) -> DealStatus:
        async def process() -> None:
            if self.state.contract_end is None:
                await self._open(inp)
            while (stage := RenewalStage(self.state.stage)) != RenewalStage.DONE:
                match stage:
                    case RenewalStage.WINDOW:  # wait until notice days before the end
                        await self._window()
                    case RenewalStage.USAGE:  # usage confirmed; expansion goes to sales
                        await self._usage()
                    case RenewalStage.PRICING:  # new terms through the approval ladder
                        await self._pricing()
                    case RenewalStage.SIGNATURE:  # signed before the contract ends
                        await self._signature()

        return await self.run_to_end(process, lambda: inp.model_copy(update={"state": self.state}))

    # -- the process ------------------------------------------------------------------------
    async def _open(self, inp: RenewalInput) -> None:
        await self.contracts.require_fields(
            "renewal", [DealField.CONTRACT_END_DATE], self.rules.usage, timedelta(hours=6)
        )
        st = self.state
        deal = st.deal
        assert deal is not None
        st.contract_end = parse_date(deal.fields.get(DealField.CONTRACT_END_DATE))
        if inp.terms is None:
            st.terms = Terms(amount=deal.amount or 0.0, discount_percent=deal.discount_percent or 0)
        await self.desk.quote.open()  # the renewal's quote lines, as the CRM holds them
        st.approvals = [a.model_copy(update={"round": 0}) for a in inp.approvals]
        origin = f" (continues {inp.from_workflow_id})" if inp.from_workflow_id else ""
        self.audit.record("started", f"contract ends {st.contract_end:%Y-%m-%d}{origin}")

    async def _window(self) -> None:
        opens = self._contract_end() - timedelta(days=self.rules.notice_days)
        await self.waits.wait_until_time(
            "window",
            opens,
            what=f"the renewal window ({opens:%Y-%m-%d})",
            owner=self.people(self.rules.owner),
        )
        heads_up = workflow.patched(WINDOW_HEADS_UP)
        self.advance(
            RenewalStage.USAGE,
            f"Renewal window open: contract ends {self._contract_end():%Y-%m-%d}.",
        )
        if heads_up:  # added after release: runs already past this point replay unchanged
            await self.crm.write(
                self.key("window", "heads-up"),
                tasks=[
                    (
                        f"Renewal window open for {self._deal_name()}",
                        self.people(self.rules.owner),
                        self._contract_end(),
                    )
                ],
            )

    async def _usage(self) -> None:
        rule = StagePolicy(
            evidence=self.rules.usage_evidence,
            owner=self.rules.owner,
            sla=self.rules.usage.sla,
            remind_before=self.rules.usage.remind_before,
            escalate_to=self.rules.usage.escalate_to,
        )
        await self.evidence.gate(
            "usage", rule, what="usage confirmation", task="Confirm product usage for the renewal"
        )
        if self.state.has_evidence(self.rules.expansion_evidence):
            await self._expansion_to_sales()
        self.advance(
            RenewalStage.PRICING,
            "Usage confirmed:\n"
            + self.evidence.summary([*self.rules.usage_evidence, self.rules.expansion_evidence]),
        )

    async def _pricing(self) -> None:
        decided = await self.desk.approve_terms()  # the same ladder as new business
        self.advance(
            RenewalStage.SIGNATURE,
            self.desk.approvals_note(decided),
            {
                DealField.APPROVED_DISCOUNT: self.state.terms.discount_percent,
                # a renewal that reads its quote writes its real margin back too
                **({DealField.REAL_MARGIN: self.desk.terms.margin()} if self.state.quote else {}),
            },
        )

    async def _signature(self) -> None:
        end, rules = self._contract_end(), self.rules
        rule = StagePolicy(
            evidence=[rules.renewal_evidence],
            owner="deal_owner",
            sla=max(end - workflow.now(), timedelta(seconds=1)),
        )
        await self.evidence.gate(
            f"signature:t{self.state.terms_version}",  # new terms: a new wait, a new write
            rule,
            what="the signed renewal",
            task="Get the renewal signed",
            # due at contract end: a missed renewal escalates then
            clock=Clock(
                sla=rule.sla,
                remind_before=min(rules.remind_before_end, rule.sla / 2),
                escalate_to=rules.escalate_to,
            ),
            or_until=self.desk.needs_approval,
        )
        if self.desk.needs_approval():
            self.advance(RenewalStage.PRICING, "Terms changed before signature.")
            return
        self.advance(
            RenewalStage.DONE, "Renewed:\n" + self.evidence.summary([rules.renewal_evidence])
        )
        await self.finish("Renewal complete.")

    # -- helpers ----------------------------------------------------------------------------
    async def _expansion_to_sales(self) -> None:
        """Expansion goes back to sales, with the usage evidence as its context."""
        context = self.evidence.summary([*self.rules.usage_evidence, self.rules.expansion_evidence])
        owner = self.people("deal_owner")
        self.audit.record("task", f"expansion handed to sales ({', '.join(owner)})")
        await self.crm.write(
            self.key("expansion"),
            notes=[f"Expansion opportunity for {self._deal_name()}:\n{context}"],
            tasks=[(f"Expansion opportunity: {self._deal_name()} — see usage notes", owner, None)],
        )

    def _contract_end(self) -> datetime:
        assert self.state.contract_end is not None
        return self.state.contract_end

    def _deal_name(self) -> str:
        return self.state.deal.name if self.state.deal else self.state.deal_id

    def _terms_fixed(self) -> str | None:
        if self.state.stage == RenewalStage.DONE:
            return "the renewal is signed"
        return None
