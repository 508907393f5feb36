"""What changes between two policies, and for whom (`handoff policy diff OLD NEW`).

Two views of one change:

- `duties(policy)`: who does what under a policy, person by person (a role's people,
  the deal owner as itself), so a diff says "nina gains: approves tier sales manager";
- `rule_changes(old, new)`: every setting that changed, as a dotted path with its old
  and new value, so nothing that changed goes unsaid.

Pure functions of the two policies: no I/O, usable by the CLI, the API and tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workflows.kit.ladder import ApprovalStep, missing_steps
from workflows.messages import DealStatus
from workflows.policy import Policy
from workflows.policy_people import OWNER_MANAGER
from workflows.policy_rules import CRM_INTEGRATION, DEAL_OWNER

#: How the deal's owner appears among people: it is a role resolved per deal.
THE_DEAL_OWNER = "(the deal owner)"
THE_OWNERS_MANAGER = "(the deal owner's manager)"


def _role_sites(policy: Policy) -> Iterator[tuple[str, str]]:
    """(role, duty in words) for every place the policy names a role."""
    for stage, sp in [*policy.stages.items(), *policy.handoffs.items()]:
        yield sp.owner, f"owns stage {stage}"
        for role in [sp.escalate_to, *sp.then_escalate_to]:
            if role:
                yield role, f"is escalated to in stage {stage}"
    for tier in policy.discounts.tiers:
        if tier.automatic:
            continue
        for role in tier.approvers:
            yield role, f"approves tier {tier.name} (up to {tier.up_to_percent:g}%)"
        for role in [tier.escalate_to, *tier.then_escalate_to]:
            if role:
                yield role, f"is escalated to for tier {tier.name}"
    for kind, rule in policy.evidence.items():
        for role in rule.recorded_by or []:
            if role != CRM_INTEGRATION:
                yield role, f"records evidence {kind}"
    for name, contract in policy.contracts.items():
        if contract.accept_by:
            yield contract.accept_by, f"accepts handoff {name}"
        for role in [contract.escalate_to, *contract.then_escalate_to]:
            if role:
                yield role, f"is escalated to for handoff {name}"
    for kind, exc in policy.exceptions.items():
        yield exc.owner, f"owns exception {kind}"
        for role in exc.raised_by or []:
            yield role, f"raises exception {kind}"
        for role in exc.resolved_by or []:
            yield role, f"resolves exception {kind}"
        for role in [exc.escalate_to, *exc.then_escalate_to]:
            if role:
                yield role, f"is escalated to for exception {kind}"
    yield policy.payment_terms.escalate_to, "is escalated to for late payment"
    if (renewal := policy.renewal) is not None:
        yield renewal.owner, "owns renewals"
        for role in (renewal.escalate_to, renewal.usage.escalate_to):
            if role:
                yield role, "is escalated to in renewals"


def duties(policy: Policy) -> dict[str, set[str]]:
    """Person (email, or the deal owner) → what they do under `policy`."""
    found: dict[str, set[str]] = {}
    for role, duty in _role_sites(policy):
        if role in (DEAL_OWNER, OWNER_MANAGER):
            people = [THE_DEAL_OWNER if role == DEAL_OWNER else THE_OWNERS_MANAGER]
        else:
            people = policy.people.get(role, [])
        for person in people:
            found.setdefault(person, set()).add(duty)
    return found


@dataclass(frozen=True)
class PersonChange:
    person: str
    gains: list[str] = field(default_factory=list)
    loses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuleChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PolicyDiff:
    old_version: str
    new_version: str
    people: list[PersonChange]
    rules: list[RuleChange]

    @property
    def empty(self) -> bool:
        return not self.people and not self.rules

    def lines(self) -> list[str]:
        """The diff in words, people first (for the CLI)."""
        out = [f"policy {self.old_version} → {self.new_version}"]
        if self.empty:
            return [*out, "no change"]
        if self.people:
            out.append("for whom:")
        for p in self.people:
            out += [f"  {p.person} gains: {duty}" for duty in p.gains]
            out += [f"  {p.person} loses: {duty}" for duty in p.loses]
        if self.rules:
            out.append("settings:")
        out += [f"  {r.path}: {_show(r.old)} → {_show(r.new)}" for r in self.rules]
        return out


def _show(value: Any) -> str:
    return "(unset)" if value is _MISSING else repr(value)


_MISSING: Any = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON value as dotted paths to leaves (lists of scalars stay one leaf)."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        flat = {}
        for i, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}.{i}"))
        return flat
    return {prefix: value}


def rule_changes(old: Policy, new: Policy) -> list[RuleChange]:
    before, after = _flatten(old.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    return [
        RuleChange(path, before.get(path, _MISSING), after.get(path, _MISSING))
        for path in sorted(before.keys() | after.keys())
        if before.get(path, _MISSING) != after.get(path, _MISSING)
    ]


def diff(old: Policy, new: Policy) -> PolicyDiff:
    """What changes for whom, then every changed setting."""
    was, will = duties(old), duties(new)
    people = [
        PersonChange(
            person,
            gains=sorted(will.get(person, set()) - was.get(person, set())),
            loses=sorted(was.get(person, set()) - will.get(person, set())),
        )
        for person in sorted(was.keys() | will.keys())
    ]
    return PolicyDiff(
        old.version,
        new.version,
        [p for p in people if p.gains or p.loses],
        rule_changes(old, new),
    )


# -- what open handoffs would be asked (`handoff policy simulate FILE`) ----------------
@dataclass(frozen=True)
class Simulated:
    workflow_id: str
    now: str
    under_new: str

    @property
    def changes(self) -> bool:
        return self.now != self.under_new


def _asks(steps: list[ApprovalStep]) -> str:
    return "; ".join(f"tier {s.tier} of {', '.join(s.approvers)}" for s in steps) or "nothing"


def _stage_ask(policy: Policy, status: DealStatus) -> str:
    rule = policy.stages.get(status.stage) or policy.handoffs.get(status.stage)  # type: ignore[call-overload]
    if rule is None:
        return f"{status.waiting_on} from {', '.join(status.owner) or '-'}"
    owner = policy.people_for(rule.owner, status.deal_owner)
    escalate = policy.people_for(rule.escalate_to, status.deal_owner)
    return (
        f"{status.waiting_on} from {', '.join(owner) or '-'}, "
        f"escalating to {', '.join(escalate) or 'nobody'} after {rule.sla}"
    )


def would_ask(old: Policy, new: Policy, status: DealStatus) -> Simulated:
    """What an open handoff is asked under its policy and would be under `new`: the
    approval tiers still missing (given approvals kept) at the deal desk, else the
    current stage's owner and escalation."""
    if status.pending_approval is not None or status.stage == "deal_desk":
        now = missing_steps(old, status.terms, status.approvals, status.deal_owner)
        then = missing_steps(new, status.terms, status.approvals, status.deal_owner)
        return Simulated(status.workflow_id, _asks(now), _asks(then))
    return Simulated(status.workflow_id, _stage_ask(old, status), _stage_ask(new, status))
