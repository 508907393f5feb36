"""`LeadToCash`: one deal, from qualification to cash, moved only by evidence.

Stages (see DESIGN.md): qualify → deal desk → close → sales→ops → delivery →
ops→billing → cash. Every stage is a wait with an owner and a deadline; every
transition is written back to the CRM with a note and tasks for whoever owes the next
action. The deal desk runs `DiscountApproval` children, one per round of terms.

Messages (each a signal and a validated update; see `workflows.names.Msg`):
`add_evidence`, `approve`, `reject`, `update_terms`, `raise_exception`,
`resolve_exception`, `accept_handoff`, `delegate_approval`, `recall_approval`,
`deal_changed`. Query: `status`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.crm import BillingReceipt, BillingRequest, CrmActivities
    from connectors.base import BillingDocument

from workflows.kit.desk import ApprovalDesk, DeskState
from workflows.kit.handoff import ContinueAsNewNow, parse_date
from workflows.kit.state import Wait
from workflows.messages import (
    DealStatus,
    Terms,
)
from workflows.names import Stage, WaitingOn
from workflows.options import CRM_WRITE, MAX_HISTORY_EVENTS
from workflows.policy import Policy


class LeadToCashState(DeskState):
    """Everything that survives continue-as-new."""

    billing_document_id: str | None = None
    invoiced_at: datetime | None = None


class LeadToCashInput(BaseModel):
    """Start input: the deal, and the policy (with its version) it runs under."""

    crm: str
    deal_id: str
    policy: Policy
    policy_version: str
    state: LeadToCashState | None = None
    max_history_events: int = MAX_HISTORY_EVENTS


@workflow.defn
class LeadToCash(ApprovalDesk):
    """The lead-to-cash handoff of one deal (see the module docstring)."""

    state: LeadToCashState

    @workflow.init
    def __init__(self, inp: LeadToCashInput) -> None:
        super().__init__()
        self.policy, self.policy_version = inp.policy, inp.policy_version
        self.max_history_events = inp.max_history_events
        self.state = inp.state or LeadToCashState(
            crm=inp.crm, deal_id=inp.deal_id, stage=Stage.QUALIFY, stage_since=workflow.now()
        )
        self._child = None

    @workflow.run
    async def run(self, inp: LeadToCashInput) -> DealStatus:
        try:
            if self.state.deal is None:
                await self._open()
            while self.state.stage != Stage.DONE:
                await self._stages[Stage(self.state.stage)](self)
        except ContinueAsNewNow:
            await self.drain_and_continue_as_new(
                lambda: inp.model_copy(update={"state": self.state})
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.describe()

    # -- the process ------------------------------------------------------------------------
    async def _open(self) -> None:
        deal = await self.refresh_deal()
        st = self.state
        st.terms = Terms(
            amount=deal.amount or 0.0,
            discount_percent=deal.discount_percent or 0.0,
            cost=_number(deal.fields.get("cost")),
        )
        for kind in self.policy.evidence_in_fields(deal.fields):
            self.add_evidence(kind, f"{st.crm}@crm", None, "from a CRM field")
        self.record("started", f"policy {self.policy_version}; terms {self._terms_text()}")

    async def _qualify(self) -> None:
        rule = self.policy.stage(Stage.QUALIFY)
        await self.evidence_gate(
            "qualify",
            rule,
            what="qualification evidence",
            task="Qualify the deal: " + ", ".join(self.missing_evidence(rule.evidence)),
        )
        self.advance(
            Stage.DEAL_DESK,
            "Qualified on evidence:\n" + self.evidence_summary(rule.evidence),
            self._crm_stage(Stage.QUALIFY),
        )

    async def _deal_desk(self) -> None:
        decided = await self.approve_terms()
        st = self.state
        self.advance(
            Stage.CLOSE,
            self.approvals_note(decided),
            {
                "approved_discount": st.terms.discount_percent,
                "real_margin": st.terms.margin_percent(self.policy.discounts.default_cost_ratio),
                **self._crm_stage(Stage.DEAL_DESK),
            },
        )

    async def _close(self) -> None:
        rule = self.policy.stage(Stage.CLOSE)
        await self.evidence_gate(
            f"close:t{self.state.terms_version}",
            rule,
            what="a signed contract",
            task="Get the contract signed",
            or_until=self._needs_approval,  # new terms send the deal back to the desk
        )
        if self._needs_approval():
            self.advance(Stage.DEAL_DESK, "Terms changed before signature: approval asked again.")
            return
        self.advance(
            Stage.SALES_TO_OPS,
            "Closed won on evidence:\n" + self.evidence_summary(rule.evidence),
            self._crm_stage(Stage.CLOSE),
        )

    async def _sales_to_ops(self) -> None:
        await self._handoff("sales_to_ops", Stage.DELIVERY)

    async def _delivery(self) -> None:
        rule = self.policy.stage(Stage.DELIVERY)
        fields = self.state.deal.fields if self.state.deal else {}
        await self.evidence_gate(
            "delivery",
            rule,
            what="delivery confirmation",
            task="Deliver and confirm delivery",
            starts_at=parse_date(fields.get("start_date")),  # the clock starts at the start date
        )
        self.advance(Stage.OPS_TO_BILLING, "Delivered:\n" + self.evidence_summary(rule.evidence))

    async def _ops_to_billing(self) -> None:
        await self.check_contract("ops_to_billing")
        st = self.state
        if st.billing_document_id is None:
            receipt = await self._create_billing_document()
            st.billing_document_id, st.invoiced_at = receipt.document_id, workflow.now()
            self.record("writeback", f"billing document {receipt.document_id} created")
        await self._handoff("ops_to_billing", Stage.CASH, check=False)

    async def _cash(self) -> None:
        rule = self.policy.stage(Stage.CASH)
        await self.evidence_gate(
            "cash",
            rule,
            what="payment",
            task=f"Collect payment of {self.state.terms.net:,.2f} {self.policy.currency}",
            clock=self.policy.payment_terms.clock,  # due within the payment terms
            starts_at=self.state.invoiced_at,
        )
        self.advance(Stage.DONE, "Cash received:\n" + self.evidence_summary(rule.evidence))
        await self.finish("Lead to cash complete.")

    _stages = {
        Stage.QUALIFY: _qualify,
        Stage.DEAL_DESK: _deal_desk,
        Stage.CLOSE: _close,
        Stage.SALES_TO_OPS: _sales_to_ops,
        Stage.DELIVERY: _delivery,
        Stage.OPS_TO_BILLING: _ops_to_billing,
        Stage.CASH: _cash,
    }

    # -- stage helpers ----------------------------------------------------------------------
    async def _handoff(
        self, contract: Literal["sales_to_ops", "ops_to_billing"], then: Stage, check: bool = True
    ) -> None:
        """A team handoff: the contract's fields, then the receiving team's acceptance."""
        if check:
            await self.check_contract(contract)
        rule = self.policy.contracts[contract]
        if rule.accept_by:
            team = rule.accept_by
            await self.wait_for(
                Wait(
                    key=f"{contract}:accept",
                    on=WaitingOn.ACCEPTANCE,
                    what=f"{team} to accept the handoff",
                    owner=self.people(team),
                    ready=lambda: self.accepted_by(team),
                    clock=rule,
                    team=team,
                    task=f"Accept the {contract.replace('_', ' → ')} handoff",
                )
            )
        fields = self.state.deal.fields if self.state.deal else {}
        self.advance(
            then,
            f"Handoff {contract.replace('_', ' → ')}: "
            + "; ".join(f"{f}: {fields.get(f, '')}" for f in rule.fields),
        )

    async def _create_billing_document(self) -> BillingReceipt:
        st = self.state
        deal_name = st.deal.name if st.deal else st.deal_id
        request = BillingRequest(
            deal_id=st.deal_id,
            document=BillingDocument(
                title=f"Invoice for {deal_name}",
                amount=st.terms.net,
                currency=self.policy.currency,
                payment_terms_days=self.policy.payment_terms.days,
                key=self.key("billing"),
            ),
        )
        return await self.crm_effect(
            self.key("billing"),
            lambda: workflow.execute_activity_method(
                CrmActivities.create_billing_document, request, **CRM_WRITE
            ),
        )

    def _crm_stage(self, stage: Stage) -> dict[str, str | float | None]:
        value = self.policy.crm_stages.get(stage)
        return {"crm_stage": value} if value else {}

    def terms_fixed(self) -> str | None:
        if self.state.stage in (Stage.QUALIFY, Stage.DEAL_DESK, Stage.CLOSE):
            return None
        return f"terms are fixed once the contract is signed (stage is {self.state.stage})"


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
