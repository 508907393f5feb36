"""What a policy must satisfy, beyond each field's own type, and its duties in words.

`reference_problems` is the `Policy` model's own check: every role, evidence kind,
stage and tier a rule names exists, and the stages, contracts and exception kinds
Handoff needs are there. `file_problems` holds the stricter rules only a policy *file*
must meet (a running handoff's stored policy never has to). `duty_rules` says who may
do what, for `handoff policy check`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from workflows.names import Stage
from workflows.policy_people import OWNER_MANAGER, calendar_problems
from workflows.policy_quote import quote_rule_problems
from workflows.policy_rules import CRM_INTEGRATION

if TYPE_CHECKING:
    from workflows.policy import Policy

#: Exception kinds Handoff raises on its own: the ladder ran out, the CRM refused a write.
REQUIRED_EXCEPTIONS = ("approval_timeout", "crm_write_failed")


def reference_problems(policy: Policy) -> list[str]:
    """Every reference to a role, evidence kind, stage or tier that does not exist, and
    every stage, contract or exception kind Handoff needs that is missing."""
    roles = set(policy.people) | {"deal_owner", OWNER_MANAGER}
    problems: list[str] = []

    def role(where: str, name: str | None) -> None:
        if name is not None and name not in roles:
            problems.append(f"{where}: unknown role {name!r} (known: {sorted(roles)})")

    def evidence(where: str, kinds: Iterable[str]) -> None:
        for kind in kinds:
            if kind not in policy.evidence:
                known = sorted(policy.evidence)
                problems.append(f"{where}: unknown kind {kind!r} (known: {known})")

    for where, sp in [
        *((f"stages.{k}", v) for k, v in policy.stages.items()),
        *((f"handoffs.{k}", v) for k, v in policy.handoffs.items()),
    ]:
        role(f"{where}.owner", sp.owner)
        role(f"{where}.escalate_to", sp.escalate_to)
        evidence(f"{where}.evidence", sp.evidence)
    for kind, rule in policy.evidence.items():
        for r in rule.recorded_by or []:
            role(f"evidence.{kind}.recorded_by", None if r == CRM_INTEGRATION else r)
        stages = {*Stage, *policy.handoffs}
        if rule.from_stage is not None and rule.from_stage not in stages:
            problems.append(
                f"evidence.{kind}.from_stage: unknown stage {rule.from_stage!r} "
                f"(known: {sorted(stages)})"
            )
    for i, tier in enumerate(policy.discounts.tiers):
        for r in tier.approvers:
            role(f"discounts.tiers.{i}.approvers", r)
        role(f"discounts.tiers.{i}.escalate_to", tier.escalate_to)
    for name, contract in policy.contracts.items():
        role(f"contracts.{name}.accept_by", contract.accept_by)
        role(f"contracts.{name}.escalate_to", contract.escalate_to)
    for kind_name, exc in policy.exceptions.items():
        role(f"exceptions.{kind_name}.owner", exc.owner)
        role(f"exceptions.{kind_name}.escalate_to", exc.escalate_to)
        for r in [*(exc.raised_by or []), *(exc.resolved_by or [])]:
            role(f"exceptions.{kind_name}.raised_by/resolved_by", r)
    role("payment_terms.escalate_to", policy.payment_terms.escalate_to)
    if (renewal := policy.renewal) is not None:
        role("renewal.owner", renewal.owner)
        role("renewal.escalate_to", renewal.escalate_to)
        role("renewal.usage.escalate_to", renewal.usage.escalate_to)
        evidence("renewal", renewal.usage_evidence)
        evidence("renewal", (renewal.expansion_evidence, renewal.renewal_evidence))
    for fname, kind in policy.evidence_fields.items():
        evidence(f"evidence_fields.{fname}", [kind])
    problems += calendar_problems(policy.calendars, roles)
    problems += quote_rule_problems(
        policy.quote_rules, roles, {t.name for t in policy.discounts.tiers}
    )
    role("info_request.escalate_to", policy.info_request.escalate_to)
    required_stages = (Stage.QUALIFY, Stage.DEAL_DESK, Stage.CLOSE, Stage.DELIVERY, Stage.CASH)
    problems += [
        f"stages: missing stage {s.value!r}" for s in required_stages if s not in policy.stages
    ]
    problems += [
        f"contracts: missing contract {c!r}"
        for c in ("sales_to_ops", "ops_to_billing")
        if c not in policy.contracts
    ]
    problems += [
        f"exceptions: missing kind {k!r} (Handoff raises it itself)"
        for k in REQUIRED_EXCEPTIONS
        if k not in policy.exceptions
    ]
    return problems


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def file_problems(policy: Policy) -> list[str]:
    """Mistakes a policy *file* may not have, beyond the model's own rules.

    Kept out of the model on purpose: running handoffs carry the policy they started
    with, and a stricter model must never make their input unreadable.
    """
    problems = [
        f"people.{role}: {person!r} is not an email address"
        for role, persons in policy.people.items()
        for person in persons
        if not _EMAIL.match(person)
    ]
    problems += [
        f"discounts.tiers.{i}.remind_before: {tier.remind_before} is not before its "
        f"deadline (sla {tier.sla})"
        for i, tier in enumerate(policy.discounts.tiers)
        if not tier.automatic and tier.remind_before and tier.remind_before >= tier.sla
    ]
    return problems


def duty_rules(policy: Policy) -> list[str]:
    """Who may do what, in words (for `handoff policy check`), warnings first."""

    def who(roles: list[str] | None, nobody: str = "nobody") -> str:
        return "anyone (no rule: add recorded_by)" if roles is None else ", ".join(roles) or nobody

    lines = [
        f"warning: evidence {kind} may be recorded by anyone (no recorded_by)"
        for kind, rule in policy.evidence.items()
        if rule.recorded_by is None
    ]
    for kind, rule in policy.evidence.items():
        since = f", from {rule.from_stage} on" if rule.from_stage else ""
        lines.append(f"evidence {kind}: recorded by {who(rule.recorded_by)}{since}")
    for kind, exc in policy.exceptions.items():
        raised = who(exc.raised_by, "Handoff itself")
        resolved = (
            who(exc.resolved_by)
            if exc.resolved_by is not None
            else (f"its owner ({exc.owner}), its escalation and the deal owner")
        )
        holds = "; holds the stage" if exc.blocks else ""
        lines.append(f"exception {kind}: raised by {raised}; resolved by {resolved}{holds}")
    for tier in policy.discounts.tiers:
        if not tier.automatic:
            words = {"any": "any one of", "all": "all of"}.get(str(tier.decision))
            decide = words or f"{tier.decision} of"
            lines.append(
                f"tier {tier.name}: approved by {decide} {', '.join(tier.approvers)}; never "
                "by the discount's requester"
            )
    return lines
