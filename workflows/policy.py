"""The policy: evidence, discount tiers, SLAs, handoff contracts and payment terms.

Ops change policy without code. A policy file is validated at load; a bad one fails with
a message naming the field. Each workflow carries the policy it started with and its
version (a content hash), so editing the file never changes a running handoff.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from connectors.mapping import evidence_in_fields
from workflows.business_hours import BusinessCalendar
from workflows.names import Stage
from workflows.policy_people import (
    OWNER_MANAGER,
    PEOPLE_FIELDS,
    ManagerEmail,
    PersonEntry,
    calendar_problems,
    manager_of,
)
from workflows.policy_quote import DEFAULT_INFO_CLOCK, QuoteRule, quote_rule_problems
from workflows.policy_rules import (
    CRM_INTEGRATION,
    Clock,
    Contract,
    DiscountPolicy,
    EvidenceEntry,
    EvidenceRule,
    ExceptionPolicy,
    PaymentTerms,
    RenewalPolicy,
    StagePolicy,
    Tier,
    _Strict,
)

#: Exception kinds Handoff raises on its own: the ladder ran out, the CRM refused a write.
REQUIRED_EXCEPTIONS = ("approval_timeout", "crm_write_failed")

__all__ = [
    "REQUIRED_EXCEPTIONS",
    "Clock",
    "Contract",
    "DiscountPolicy",
    "EvidenceRule",
    "ExceptionPolicy",
    "PaymentTerms",
    "Policy",
    "PolicyError",
    "QuoteRule",
    "RenewalPolicy",
    "StagePolicy",
    "Tier",
    "default_policy",
    "load_policy",
    "parse_policy",
]


class Policy(_Strict):
    """Everything ops can change without code. See `deploy/policy.example.yaml`."""

    name: str = "default"
    currency: str = "USD"
    people: dict[str, list[str]] = Field(description="Roles to people (emails).")
    evidence: dict[str, EvidenceEntry] = Field(
        description="Evidence kinds: what each means, who may record it, from which stage."
    )
    stages: dict[Stage, StagePolicy]
    discounts: DiscountPolicy
    contracts: dict[Literal["sales_to_ops", "ops_to_billing"], Contract]
    payment_terms: PaymentTerms = PaymentTerms()
    exceptions: dict[str, ExceptionPolicy]
    crm_stages: dict[Stage, str] = Field(
        default_factory=dict, description="CRM stage value to set when a stage completes."
    )
    field_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per CRM: canonical field → CRM property overrides."
    )
    renewal: RenewalPolicy | None = Field(
        default=None, description="Optional: only the renewal workflow needs it."
    )
    handoffs: dict[str, StagePolicy] = Field(
        default_factory=dict,
        description="Stages of handoffs added with `handoff new`, by handoff name.",
    )
    lost_crm_stages: list[str] = Field(
        default_factory=lambda: ["closed_lost"],
        description="Canonical CRM stages that mean the deal is lost: the handoff ends.",
    )
    reopen_crm_stages: list[str] = Field(
        default_factory=lambda: ["new", "qualified", "negotiation"],
        description="Canonical CRM stages that re-open a lost deal: a new handoff starts, "
        "linked to the lost one.",
    )
    trigger_crm_stages: list[str] = Field(
        default_factory=lambda: ["new"],
        description="Canonical CRM stages that start a deal's handoff when a deal enters them.",
    )
    evidence_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical CRM field → evidence kind, recorded when the field is truthy.",
    )
    calendars: dict[str, BusinessCalendar] = Field(
        default_factory=dict,
        description="Business calendars by team: SLAs count their working hours "
        "(see workflows/policy_people.py).",
    )
    directory: dict[str, PersonEntry] = Field(
        default_factory=dict,
        description="People by email: their manager and team (role `owner_manager`).",
    )
    team_managers: dict[str, ManagerEmail] = Field(
        default_factory=dict,
        description="CRM team name → who manages it (role `owner_manager` for HubSpot "
        "owners, by their primary team).",
    )
    quote_rules: list[QuoteRule] = Field(
        default_factory=list,
        description="Approval rules over the quote (`workflows.policy_quote`).",
    )
    info_request: Clock = Field(
        default=DEFAULT_INFO_CLOCK,
        description="SLA of an approver's question to the rep (owner: the deal owner).",
    )

    @model_validator(mode="after")
    def _references_exist(self) -> Policy:
        roles = set(self.people) | {"deal_owner", OWNER_MANAGER}
        problems: list[str] = []

        def role(where: str, name: str | None) -> None:
            if name is not None and name not in roles:
                problems.append(f"{where}: unknown role {name!r} (known: {sorted(roles)})")

        def evidence(where: str, kinds: Iterable[str]) -> None:
            for kind in kinds:
                if kind not in self.evidence:
                    known = sorted(self.evidence)
                    problems.append(f"{where}: unknown kind {kind!r} (known: {known})")

        for where, sp in [
            *((f"stages.{k}", v) for k, v in self.stages.items()),
            *((f"handoffs.{k}", v) for k, v in self.handoffs.items()),
        ]:
            role(f"{where}.owner", sp.owner)
            role(f"{where}.escalate_to", sp.escalate_to)
            evidence(f"{where}.evidence", sp.evidence)
        for kind, rule in self.evidence.items():
            for r in rule.recorded_by or []:
                role(f"evidence.{kind}.recorded_by", None if r == CRM_INTEGRATION else r)
            stages = {*Stage, *self.handoffs}
            if rule.from_stage is not None and rule.from_stage not in stages:
                problems.append(
                    f"evidence.{kind}.from_stage: unknown stage {rule.from_stage!r} "
                    f"(known: {sorted(stages)})"
                )
        for i, tier in enumerate(self.discounts.tiers):
            for r in tier.approvers:
                role(f"discounts.tiers.{i}.approvers", r)
            role(f"discounts.tiers.{i}.escalate_to", tier.escalate_to)
        for name, contract in self.contracts.items():
            role(f"contracts.{name}.accept_by", contract.accept_by)
            role(f"contracts.{name}.escalate_to", contract.escalate_to)
        for kind_name, exc in self.exceptions.items():
            role(f"exceptions.{kind_name}.owner", exc.owner)
            role(f"exceptions.{kind_name}.escalate_to", exc.escalate_to)
            for r in [*(exc.raised_by or []), *(exc.resolved_by or [])]:
                role(f"exceptions.{kind_name}.raised_by/resolved_by", r)
        role("payment_terms.escalate_to", self.payment_terms.escalate_to)
        if (renewal := self.renewal) is not None:
            role("renewal.owner", renewal.owner)
            role("renewal.escalate_to", renewal.escalate_to)
            role("renewal.usage.escalate_to", renewal.usage.escalate_to)
            evidence("renewal", renewal.usage_evidence)
            evidence("renewal", (renewal.expansion_evidence, renewal.renewal_evidence))
        for fname, kind in self.evidence_fields.items():
            evidence(f"evidence_fields.{fname}", [kind])
        problems += calendar_problems(self.calendars, roles)
        problems += quote_rule_problems(
            self.quote_rules, roles, {t.name for t in self.discounts.tiers}
        )
        role("info_request.escalate_to", self.info_request.escalate_to)
        required_stages = (Stage.QUALIFY, Stage.DEAL_DESK, Stage.CLOSE, Stage.DELIVERY, Stage.CASH)
        problems += [
            f"stages: missing stage {s.value!r}" for s in required_stages if s not in self.stages
        ]
        problems += [
            f"contracts: missing contract {c!r}"
            for c in ("sales_to_ops", "ops_to_billing")
            if c not in self.contracts
        ]
        problems += [
            f"exceptions: missing kind {k!r} (Handoff raises it itself)"
            for k in REQUIRED_EXCEPTIONS
            if k not in self.exceptions
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- helpers used by workflows (pure, deterministic) -------------------------------
    @property
    def version(self) -> str:
        """A content hash: equal policies have equal versions, whatever the file layout."""
        data = self.model_dump(mode="json")
        for name in PEOPLE_FIELDS:  # unused people fields leave older versions as they were
            if not data.get(name):
                data.pop(name, None)
        if not self.quote_rules and self.info_request == DEFAULT_INFO_CLOCK:
            del data["quote_rules"], data["info_request"]  # older policies keep their version
        canonical = json.dumps(data, sort_keys=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def people_for(
        self, role: str | None, deal_owner: str = "", crm_manager: str | None = None
    ) -> list[str]:
        """The emails behind a role; `deal_owner` resolves to the deal's owner, and
        `owner_manager` to `crm_manager` (the CRM's word) when given."""
        if role is None:
            return []
        if role == "deal_owner":
            return [deal_owner] if deal_owner else list(self.people.get("sales_rep", []))
        if role == OWNER_MANAGER:
            owner = deal_owner or next(iter(self.people.get("sales_rep", [])), "")
            return manager_of(self.directory, self.people, owner, crm_manager)
        return list(self.people.get(role, []))

    def stage(self, stage: Stage) -> StagePolicy:
        return self.stages[stage]

    def evidence_kinds(self) -> list[str]:
        return sorted(self.evidence)

    def evidence_in_fields(self, fields: dict[str, str]) -> list[str]:
        """Evidence kinds that CRM fields prove (a ticked "budget confirmed" box...)."""
        return evidence_in_fields(self.evidence_fields, fields)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names each bad field."""


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


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


def parse_policy(data: object, source: str = "policy") -> Policy:
    """Validate policy data from a file; raises `PolicyError` naming the fields."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source} is invalid:\n{_format(exc)}") from None
    if problems := file_problems(policy):
        raise PolicyError(f"{source} is invalid:\n" + "\n".join(f"  {p}" for p in problems))
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate a YAML policy file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path} is not valid YAML: {exc}") from None
    return parse_policy(data, source=str(path))


DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")


def default_policy() -> Policy:
    """The shipped default policy (the same as `deploy/policy.example.yaml`)."""
    return load_policy(DEFAULT_POLICY_PATH)
