"""The rules a policy is made of: SLA clocks, stages, discount tiers, contracts,
payment terms, exceptions and renewals (assembled by `workflows.policy.Policy`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Clock(_Strict):
    """An SLA: due after `sla`, a reminder `remind_before` the due time, then escalation."""

    sla: Duration
    remind_before: Duration = timedelta(0)
    escalate_to: str | None = Field(default=None, description="Role told when the SLA passes.")
    then_escalate_to: list[str] = Field(
        default_factory=list,
        description="Roles escalated to next, one more `sla` apart (manager → VP → …); "
        "after the last, the last is told again every `sla` until someone acts.",
    )

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
    then_escalate_to: list[str] = Field(
        default_factory=list,
        description="Roles added next, one `escalation_sla` apart, before the ladder is "
        "exhausted (manager → VP → CFO …).",
    )
    decision: Literal["any", "all"] | Annotated[int, Field(ge=1)] = Field(
        default="any",
        description="Who must approve: any one approver (first response), all of them, "
        "or a quorum (a number). One rejection rejects the tier.",
    )

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


#: In `recorded_by`, `raised_by` and `resolved_by`: besides roles, the deal's owner and
#: the CRM integration (evidence from a ticked CRM field).
DEAL_OWNER, CRM_INTEGRATION = "deal_owner", "crm"


class EvidenceRule(_Strict):
    """One kind of evidence: what it means, who may record it and from which stage on.

    A policy file may give just the meaning (`kind: text`): anyone may then record it,
    as older policy files allowed (`handoff policy check` warns about such kinds)."""

    description: str
    recorded_by: list[str] | None = Field(
        default=None, description="Roles, `deal_owner` or `crm` that may record it."
    )
    from_stage: str | None = Field(
        default=None, description="The earliest stage of its handoff in which it counts."
    )


def _evidence_rule(value: object) -> object:
    return {"description": value} if isinstance(value, str) else value


EvidenceEntry = Annotated[EvidenceRule, BeforeValidator(_evidence_rule)]


class ExceptionPolicy(Clock):
    """How one kind of exception is routed: its owner role, its own SLA, who may raise
    and resolve it, and whether it holds the stage until resolved."""

    owner: str
    raised_by: list[str] | None = Field(
        default=None, description="Roles (or `deal_owner`) that may raise it; unset: anyone."
    )
    resolved_by: list[str] | None = Field(
        default=None,
        description="Roles that may resolve it; unset: its owner, escalation and the deal owner.",
    )
    blocks: bool = Field(default=False, description="The stage cannot advance while it is open.")


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
