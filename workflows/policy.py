"""The policy: evidence, discount tiers, SLAs, handoff contracts and payment terms.

Ops change policy without code. A policy file is validated at load; a bad one fails with
a message naming the field. Each workflow carries the policy it started with and its
version (a content hash), so editing the file never changes a running handoff.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from connectors.mapping import evidence_in_fields
from workflows.names import Stage

_SHORT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _duration(value: object) -> object:
    """Accept `90s`, `4h`, `7d`, `2w`, ISO 8601 (`P7D`) or seconds."""
    if isinstance(value, str):
        match = _SHORT_DURATION.match(value)
        if match:
            return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
#: Exception kinds Handoff raises on its own: the ladder ran out, the CRM refused a write.
REQUIRED_EXCEPTIONS = ("approval_timeout", "crm_write_failed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Clock(_Strict):
    """An SLA: due after `sla`, a reminder `remind_before` the due time, then escalation."""

    sla: Duration
    remind_before: Duration = timedelta(0)
    escalate_to: str | None = Field(default=None, description="Role told when the SLA passes.")

    @model_validator(mode="after")
    def _reminder_inside_sla(self) -> Clock:
        if self.remind_before >= self.sla and self.remind_before:
            raise ValueError("remind_before must be shorter than sla")
        return self


class StagePolicy(Clock):
    """What a stage waits for and who owns the wait."""

    evidence: list[str] = Field(default_factory=list)
    owner: str = Field(default="deal_owner", description="Role that must act in this stage.")


class Tier(_Strict):
    """One rung of the discount ladder: discounts up to `up_to_percent` need `approvers`."""

    name: str
    up_to_percent: float = Field(gt=0, le=100)
    approvers: list[str] = Field(default_factory=list, description="Roles; empty = automatic.")
    sla: Duration = timedelta(days=1)
    remind_before: Duration = timedelta(hours=4)
    escalate_to: str | None = Field(default=None, description="Role asked when `sla` passes.")
    escalation_sla: Duration = timedelta(days=1)

    @property
    def automatic(self) -> bool:
        return not self.approvers


class DiscountPolicy(_Strict):
    """The approval ladder and what happens when it is exhausted."""

    tiers: list[Tier]
    on_exhausted: Literal["reject", "park"] = "park"
    default_cost_ratio: float = Field(
        default=0.6, ge=0, lt=1, description="Cost as a share of list price, for margin."
    )

    @model_validator(mode="after")
    def _ascending_to_100(self) -> DiscountPolicy:
        limits = [t.up_to_percent for t in self.tiers]
        if not limits:
            raise ValueError("at least one tier is required")
        if limits != sorted(set(limits)):
            raise ValueError(f"tiers must have strictly ascending up_to_percent, got {limits}")
        if limits[-1] != 100:
            raise ValueError("the last tier must go up_to_percent: 100")
        return self

    def tier_for(self, discount_percent: float) -> int:
        """Index of the tier a discount falls in."""
        for i, tier in enumerate(self.tiers):
            if discount_percent <= tier.up_to_percent:
                return i
        return len(self.tiers) - 1


class Contract(Clock):
    """A handoff contract: the next team's required fields, and who must accept."""

    fields: list[str]
    accept_by: str | None = Field(default=None, description="Team that must accept, if any.")
    recheck_every: Duration = timedelta(hours=1)


class PaymentTerms(_Strict):
    """When cash is due after the invoice, with reminder and escalation."""

    days: int = Field(default=30, gt=0, le=365)
    remind_before: Duration = timedelta(days=5)
    escalate_to: str = "collections"

    @property
    def clock(self) -> Clock:
        return Clock(
            sla=timedelta(days=self.days),
            remind_before=self.remind_before,
            escalate_to=self.escalate_to,
        )


class ExceptionPolicy(Clock):
    """How one kind of exception is routed: its owner role and its own SLA."""

    owner: str


class RenewalPolicy(_Strict):
    """Renewal and expansion: when the window opens, who confirms usage, who escalates."""

    notice_days: int = Field(default=90, gt=0, le=730, description="Days before contract end.")
    owner: str = Field(default="deal_owner", description="Role that confirms usage.")
    usage_evidence: list[str] = Field(default_factory=lambda: ["usage_confirmed"])
    usage: Clock = Clock(sla=timedelta(days=14), remind_before=timedelta(days=3))
    expansion_evidence: str = "expansion_identified"
    renewal_evidence: str = "renewal_signed"
    remind_before_end: Duration = timedelta(days=14)
    escalate_to: str | None = Field(default=None, description="Told when a renewal is missed.")


class Policy(_Strict):
    """Everything ops can change without code. See `deploy/policy.example.yaml`."""

    name: str = "default"
    currency: str = "USD"
    people: dict[str, list[str]] = Field(description="Roles to people (emails).")
    evidence: dict[str, str] = Field(description="Evidence kinds and what each means.")
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
    trigger_crm_stages: list[str] = Field(
        default_factory=lambda: ["new"],
        description="Canonical CRM stages that start a deal's handoff when a deal enters them.",
    )
    evidence_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical CRM field → evidence kind, recorded when the field is truthy.",
    )

    @model_validator(mode="after")
    def _references_exist(self) -> Policy:
        roles = set(self.people) | {"deal_owner"}
        problems: list[str] = []

        def role(where: str, name: str | None) -> None:
            if name is not None and name not in roles:
                problems.append(f"{where}: unknown role {name!r} (known: {sorted(roles)})")

        for stage, sp in self.stages.items():
            role(f"stages.{stage}.owner", sp.owner)
            role(f"stages.{stage}.escalate_to", sp.escalate_to)
            for kind in sp.evidence:
                if kind not in self.evidence:
                    problems.append(
                        f"stages.{stage}.evidence: unknown kind {kind!r} "
                        f"(known: {sorted(self.evidence)})"
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
        role("payment_terms.escalate_to", self.payment_terms.escalate_to)
        if (renewal := self.renewal) is not None:
            role("renewal.owner", renewal.owner)
            role("renewal.escalate_to", renewal.escalate_to)
            role("renewal.usage.escalate_to", renewal.usage.escalate_to)
            kinds = (*renewal.usage_evidence, renewal.expansion_evidence, renewal.renewal_evidence)
            for kind in kinds:
                if kind not in self.evidence:
                    problems.append(f"renewal: unknown evidence kind {kind!r}")
        for hname, sp in self.handoffs.items():
            role(f"handoffs.{hname}.owner", sp.owner)
            role(f"handoffs.{hname}.escalate_to", sp.escalate_to)
            for kind in sp.evidence:
                if kind not in self.evidence:
                    problems.append(f"handoffs.{hname}.evidence: unknown kind {kind!r}")
        for fname, kind in self.evidence_fields.items():
            if kind not in self.evidence:
                problems.append(f"evidence_fields.{fname}: unknown kind {kind!r}")
        for kind in REQUIRED_EXCEPTIONS:
            if kind not in self.exceptions:
                problems.append(f"exceptions: missing kind {kind!r} (Handoff raises it itself)")
        for required in (Stage.QUALIFY, Stage.DEAL_DESK, Stage.CLOSE, Stage.DELIVERY, Stage.CASH):
            if required not in self.stages:
                problems.append(f"stages: missing stage {required.value!r}")
        for contract_name in ("sales_to_ops", "ops_to_billing"):
            if contract_name not in self.contracts:
                problems.append(f"contracts: missing contract {contract_name!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- helpers used by workflows (pure, deterministic) -------------------------------
    @property
    def version(self) -> str:
        """A content hash: equal policies have equal versions, whatever the file layout."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def people_for(self, role: str | None, deal_owner: str = "") -> list[str]:
        """The emails behind a role; `deal_owner` resolves to the deal's owner."""
        if role is None:
            return []
        if role == "deal_owner":
            return [deal_owner] if deal_owner else list(self.people.get("sales_rep", []))
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


def parse_policy(data: object, source: str = "policy") -> Policy:
    """Validate already-parsed policy data; raises `PolicyError` naming the fields."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source} is invalid:\n{_format(exc)}") from None


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
