"""The approval ladder as pure functions: which tiers a discount needs, and which past
approvals still cover new terms.

A discount needs every approving tier up to the one it falls in (25% → sales manager;
30% → sales manager, then VP). A tier's inputs are the discount capped at the tier's
ceiling and the amount, so after `update_terms` only the tiers whose inputs rose are
asked again: 30% → 35% re-asks the VP, not the sales manager (who approved up to 25%).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from workflows.messages import ApprovalRecord, Terms
from workflows.policy import Policy


class ApprovalStep(BaseModel):
    """One tier to ask, resolved to people and durations."""

    tier: str
    up_to_percent: float
    approvers: list[str]
    sla_s: float
    remind_before_s: float
    escalate_to: list[str]
    escalation_sla_s: float
    needed: int = Field(default=1, description="Approvals the tier needs (any: 1).")
    ladder: list[list[str]] = Field(
        default_factory=list, description="People added at each escalation after the first."
    )


class ApprovalOutcome(BaseModel):
    """How the round ended, with the decisions it collected."""

    round: int
    result: Literal["approved", "rejected", "recalled", "exhausted", "superseded"]
    decisions: list[ApprovalRecord] = Field(default_factory=list)
    tier: str | None = None
    by: str | None = None
    reason: str | None = None


def required_steps(policy: Policy, terms: Terms, deal_owner: str = "") -> list[ApprovalStep]:
    """Every approving tier up to the discount's tier, lowest first."""
    tiers = policy.discounts.tiers[: policy.discounts.tier_for(terms.discount_percent) + 1]
    steps = []
    for t in tiers:
        if t.automatic or terms.discount_percent <= 0:
            continue
        approvers = sorted({p for r in t.approvers for p in policy.people_for(r, deal_owner)})
        steps.append(
            ApprovalStep(
                tier=t.name,
                up_to_percent=t.up_to_percent,
                approvers=approvers,
                sla_s=t.sla.total_seconds(),
                remind_before_s=t.remind_before.total_seconds(),
                escalate_to=policy.people_for(t.escalate_to, deal_owner),
                escalation_sla_s=t.escalation_sla.total_seconds(),
                needed=_needed(t.decision, len(approvers)),
                ladder=[policy.people_for(r, deal_owner) for r in t.then_escalate_to],
            )
        )
    return steps


def _needed(decision: str | int, approvers: int) -> int:
    if decision == "any":
        return 1
    if decision == "all":
        return max(approvers, 1)
    return max(min(int(decision), approvers), 1)


def covers(approval: ApprovalRecord, step: ApprovalStep, terms: Terms) -> bool:
    """Does a past approval still cover `step` under the new `terms`?"""
    if approval.tier != step.tier or approval.decision != "approved":
        return False
    asked = min(terms.discount_percent, step.up_to_percent)
    approved = min(approval.discount_percent, step.up_to_percent)
    return asked <= approved and terms.amount <= approval.amount


def missing_steps(
    policy: Policy, terms: Terms, approvals: list[ApprovalRecord], deal_owner: str = ""
) -> list[ApprovalStep]:
    """The tiers still to ask under `terms`, given the approvals already given."""
    return [
        step
        for step in required_steps(policy, terms, deal_owner)
        if len({a.approver for a in approvals if covers(a, step, terms)}) < step.needed
    ]


def is_automatic(policy: Policy, terms: Terms) -> bool:
    """True when the discount needs no approver at all."""
    return not required_steps(policy, terms)
