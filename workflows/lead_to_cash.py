"""`LeadToCash`: one deal, from qualification to cash, moved only by evidence.

Stages (see DESIGN.md): qualify → deal desk → close → sales→ops → delivery →
ops→billing → cash. Every stage is a wait with an owner and a deadline; every
transition is written back to the CRM with a note and tasks for whoever owes the next
action. The deal desk's approval ladder runs inside this workflow (`self.desk`).

Messages (each a signal and a validated update; see `workflows.names.Msg`):
`add_evidence`, `approve`, `reject`, `update_terms`, `raise_exception`,
`resolve_exception`, `accept_handoff`, `delegate_approval`, `recall_approval`,
`deal_changed`. Query: `status`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.crm import BillingReceipt, BillingRequest, CrmActivities
    from connectors.base import BillingDocument, FieldValue
    from connectors.mapping import DealField

from workflows.kit.clock import parse_date
from workflows.kit.contracts import ContractName
from workflows.kit.crm_truth import crm_number
from workflows.kit.desk import ApprovalDesk
from workflows.kit.handoff import HandoffWorkflow
from workflows.kit.patches import open_at_once, opened_at_once
from workflows.kit.state import DeskState
from workflows.kit.terms import TermsPart
from workflows.messages import DealStatus, inert
from workflows.names import Stage
from workflows.options import CRM_WRITE, MAX_HISTORY_EVENTS
from workflows.policy import SharedPolicy
from workflows.records import Terms


class LeadToCashState(DeskState):
    """Everything that survives continue-as-new."""

    billing_document_id: str | None = None
    invoiced_at: datetime | None = None


class LeadToCashInput(BaseModel):
    """Start input: the deal, and the policy (with its version) it runs under."""

    crm: str
    deal_id: str
    policy: SharedPolicy
    policy_version: str
    state: LeadToCashState | None = None
    max_history_events: int = MAX_HISTORY_EVENTS
    reopened_from: str | None = Field(
        default=None, description="The lost run this one re-opens (`<workflow id>/<run id>`)."
    )


@workflow.defn
class LeadToCash(HandoffWorkflow):
    """The lead-to-cash handoff of one deal (see the module docstring)."""

    state: LeadToCashState
    desk: ApprovalDesk
    stage_order = tuple(Stage)
    has_ladder = True

    @workflow.init
    def __init__(self, inp: LeadToCashInput) -> None:
        super().__init__(inp.policy, inp.policy_version, inp.max_history_events)
        self.state = inp.state or LeadToCashState(
            crm=inp.crm, deal_id=inp.deal_id, stage=Stage.QUALIFY, stage_since=workflow.now()
        )
        if inp.state is None:  # a fresh run (not continued as new): how does it open?
            open_at_once(self.state)
        self.desk = ApprovalDesk(self, self.state, TermsPart(self, self.state, self._terms_fixed))
        self._reopened_from = inp.reopened_from

    @workflow.run
    async def run(self, inp: LeadToCashInput) -> DealStatus:
        async def process() -> None:
            if self.state.deal is None:
                await self._open()  # read the deal and its terms from the CRM
            while (stage := Stage(self.state.stage)) != Stage.DONE:
                match stage:
                    case Stage.QUALIFY:  # need, budget, decision maker and timeline proven
                        await self._qualify()
                    case Stage.DEAL_DESK:  # the discount approved by everyone it needs
                        await self._deal_desk()
                    case Stage.CLOSE:  # a signed contract; the CRM says closed won
                        await self._close()
                    case Stage.SALES_TO_OPS:  # operations has what it needs and accepts
                        await self._team_handoff("sales_to_ops", Stage.DELIVERY)
                    case Stage.DELIVERY:  # delivery confirmed, clock from the start date
                        await self._delivery()
                    case Stage.OPS_TO_BILLING:  # the invoice or order exists in the CRM
                        await self._ops_to_billing()
                    case Stage.CASH:  # payment received within the payment terms
                        await self._cash()

        return await self.run_to_end(process, lambda: inp.model_copy(update={"state": self.state}))

    # -- the stages ------------------------------------------------------------------------
    async def _open(self) -> None:
        opened = None
        if opened_at_once(self.state):  # the deal, its lines and its owner's manager at once
            opened = await self.contracts.open()
            deal = opened.deal
        else:  # a handoff opened before reads them one by one
            deal = await self.contracts.refresh_deal()
        st = self.state
        st.terms = Terms(
            amount=deal.amount or 0.0,
            discount_percent=deal.discount_percent or 0.0,
            cost=crm_number(deal.fields.get(DealField.COST)),
        )
        await self.desk.quote.open(opened.lines if opened else None)  # as the CRM holds them
        for kind in self.policy.evidence_in_fields(deal.fields):
            self.evidence.add_from_crm(kind, None)
        self.audit.record(
            "started", f"policy {self.policy_version}; terms {self.desk.terms.text()}"
        )
        if self._reopened_from:
            self.audit.record("started", f"re-opened in the CRM; continues {self._reopened_from}")

    async def _qualify(self) -> None:
        rule = self.policy.stage(Stage.QUALIFY)
        await self.evidence.gate(
            "qualify",
            rule,
            what="qualification evidence",
            task="Qualify the deal: " + ", ".join(self.evidence.missing(rule.evidence)),
        )
        self.advance(
            Stage.DEAL_DESK,
            "Qualified on evidence:\n" + self.evidence.summary(rule.evidence),
            self._crm_stage(Stage.QUALIFY),
        )

    async def _deal_desk(self) -> None:
        decided = await self.desk.approve_terms()
        self.advance(
            Stage.CLOSE,
            self.desk.approvals_note(decided),
            {
                DealField.APPROVED_DISCOUNT: self.state.terms.discount_percent,
                DealField.REAL_MARGIN: self.desk.terms.margin(),
                **self._crm_stage(Stage.DEAL_DESK),
            },
        )

    async def _close(self) -> None:
        rule = self.policy.stage(Stage.CLOSE)
        await self.evidence.gate(
            f"close:t{self.state.terms_version}",
            rule,
            what="a signed contract",
            task="Get the contract signed",
            or_until=self.desk.needs_approval,  # new terms send the deal back to the desk
        )
        if self.desk.needs_approval():
            self.advance(Stage.DEAL_DESK, "Terms changed before signature: approval asked again.")
            return
        self.advance(
            Stage.SALES_TO_OPS,
            "Closed won on evidence:\n" + self.evidence.summary(rule.evidence),
            self._crm_stage(Stage.CLOSE),
        )

    async def _delivery(self) -> None:
        rule = self.policy.stage(Stage.DELIVERY)
        fields = self.state.deal.fields if self.state.deal else {}
        await self.evidence.gate(
            "delivery",
            rule,
            what="delivery confirmation",
            task="Deliver and confirm delivery",
            # the clock starts at the start date
            starts_at=parse_date(fields.get(DealField.START_DATE)),
        )
        self.advance(Stage.OPS_TO_BILLING, "Delivered:\n" + self.evidence.summary(rule.evidence))

    async def _ops_to_billing(self) -> None:
        await self.contracts.check("ops_to_billing")
        st = self.state
        if st.billing_document_id is None:
            receipt = await self._create_billing_document()  # CRM write: the invoice or order
            st.billing_document_id, st.invoiced_at = receipt.document_id, workflow.now()
            self.audit.record("writeback", f"billing document {receipt.document_id} created")
        await self._team_handoff("ops_to_billing", Stage.CASH, check=False)

    async def _cash(self) -> None:
        rule = self.policy.stage(Stage.CASH)
        await self.evidence.gate(
            "cash",
            rule,
            what="payment",
            task=f"Collect payment of {self.state.terms.net:,.2f} {self.policy.currency}",
            clock=self.policy.payment_terms.clock,  # due within the payment terms
            starts_at=self.state.invoiced_at,
        )
        self.advance(Stage.DONE, "Cash received:\n" + self.evidence.summary(rule.evidence))
        await self.finish("Lead to cash complete.")

    # -- stage helpers ----------------------------------------------------------------------
    async def _team_handoff(self, contract: ContractName, then: Stage, check: bool = True) -> None:
        """A team handoff: the contract's fields, then the receiving team's acceptance."""
        if check:
            await self.contracts.check(contract)
        await self.contracts.acceptance(contract)
        rule = self.policy.contracts[contract]
        fields = self.state.deal.fields if self.state.deal else {}
        self.advance(
            then,
            f"Handoff {contract.replace('_', ' → ')}: "
            + "; ".join(f"{f}: {inert(fields.get(f, ''))}" for f in rule.fields),
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
        return await self.crm.effect(
            self.key("billing"),
            lambda: workflow.execute_activity_method(
                CrmActivities.create_billing_document, request, **CRM_WRITE
            ),
        )

    def _crm_stage(self, stage: Stage) -> dict[str, FieldValue]:
        value = self.policy.crm_stages.get(stage)
        return {DealField.CRM_STAGE: value} if value else {}

    def _terms_fixed(self) -> str | None:
        if self.state.stage in (Stage.QUALIFY, Stage.DEAL_DESK, Stage.CLOSE):
            return None
        return f"terms are fixed once the contract is signed (stage is {self.state.stage})"
