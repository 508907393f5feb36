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

from workflows.policy import Policy, QuoteRule
from workflows.quote import metric
from workflows.records import ApprovalRecord, Terms


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
    value: float | None = Field(
        default=None, description="A quote rule's metric value when asked (tiers: none)."
    )


class ApprovalOutcome(BaseModel):
    """How the round ended, with the decisions it collected."""

    round: int
    result: Literal["approved", "rejected", "recalled", "exhausted", "superseded"]
    decisions: list[ApprovalRecord] = Field(default_factory=list)
    tier: str | None = None
    by: str | None = None
    reason: str | None = None


def required_steps(
    policy: Policy,
    terms: Terms,
    deal_owner: str = "",
    quote: bool = False,
    manager: str | None = None,
) -> list[ApprovalStep]:
    """Every approving tier up to the discount's tier, lowest first; then, for a handoff
    that reads its quote (`quote`), every quote rule that fires, in policy order."""
    tiers = policy.discounts.tiers[: policy.discounts.tier_for(terms.discount_percent) + 1]
    steps = []
    for t in tiers:
        if t.automatic or terms.discount_percent <= 0:
            continue
        approvers = sorted(
            {p for r in t.approvers for p in policy.people_for(r, deal_owner, manager)}
        )
        steps.append(
            ApprovalStep(
                tier=t.name,
                up_to_percent=t.up_to_percent,
                approvers=approvers,
                sla_s=t.sla.total_seconds(),
                remind_before_s=t.remind_before.total_seconds(),
                escalate_to=policy.people_for(t.escalate_to, deal_owner, manager),
                escalation_sla_s=t.escalation_sla.total_seconds(),
                needed=_needed(t.decision, len(approvers)),
                ladder=[policy.people_for(r, deal_owner, manager) for r in t.then_escalate_to],
            )
        )
    if quote:
        steps += [
            s
            for r in policy.quote_rules
            if (s := _rule_step(policy, r, terms, deal_owner, manager))
        ]
    return steps


def _rule_step(
    policy: Policy, rule: QuoteRule, terms: Terms, deal_owner: str, manager: str | None
) -> ApprovalStep | None:
    value = metric(terms, rule.metric, policy.discounts.default_cost_ratio)
    if rule.metric == "margin_percent" and terms.margin_source() == "ratio" and not rule.estimated:
        return None  # no cost in the CRM: the flat ratio is a guess, not a margin
    if not rule.fires(value):
        return None
    approvers = sorted(
        {p for r in rule.approvers for p in policy.people_for(r, deal_owner, manager)}
    )
    return ApprovalStep(
        tier=rule.name,
        up_to_percent=100,
        approvers=approvers,
        sla_s=rule.sla.total_seconds(),
        remind_before_s=rule.remind_before.total_seconds(),
        escalate_to=policy.people_for(rule.escalate_to, deal_owner, manager),
        escalation_sla_s=rule.escalation_sla.total_seconds(),
        needed=_needed(rule.decision, len(approvers)),
        ladder=[policy.people_for(r, deal_owner, manager) for r in rule.then_escalate_to],
        value=value,
    )


def _needed(decision: str | int, approvers: int) -> int:
    if decision == "any":
        return 1
    if decision == "all":
        return max(approvers, 1)
    return max(min(int(decision), approvers), 1)


def covers(
    approval: ApprovalRecord, step: ApprovalStep, terms: Terms, rule: QuoteRule | None = None
) -> bool:
    """Does a past approval still cover `step` under the new `terms`? A quote rule's
    approval covers it until its metric moves past the approved value, the risky way."""
    if approval.tier != step.tier or approval.decision != "approved":
        return False
    if rule is not None:
        if approval.value is None or step.value is None:
            return False
        if rule.risky_when_high:
            return step.value <= approval.value
        return step.value >= approval.value
    asked = min(terms.discount_percent, step.up_to_percent)
    approved = min(approval.discount_percent, step.up_to_percent)
    return asked <= approved and terms.amount <= approval.amount


def missing_steps(
    policy: Policy,
    terms: Terms,
    approvals: list[ApprovalRecord],
    deal_owner: str = "",
    quote: bool = False,
    manager: str | None = None,
) -> list[ApprovalStep]:
    """The tiers and rules still to ask under `terms`, given the approvals already given
    (`manager`: the owner's manager as the CRM says, for `owner_manager`)."""
    rules = {r.name: r for r in policy.quote_rules} if quote else {}
    return [
        step
        for step in required_steps(policy, terms, deal_owner, quote, manager)
        if len({a.approver for a in approvals if covers(a, step, terms, rules.get(step.tier))})
        < step.needed
    ]


def is_automatic(policy: Policy, terms: Terms) -> bool:
    """True when the discount needs no approver at all."""
    return not required_steps(policy, terms)
