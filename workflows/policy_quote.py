"""Approval rules over the quote: conditions on what the deal desk looks at, each naming
its approver chain (assembled into `workflows.policy.Policy` as `quote_rules`).

A rule fires when its metric is `above` or `below` a threshold:

- `discount_percent`: the total discount (the lines' effective discount when the deal
  has lines);
- `max_line_discount_percent`: the largest discount on any one line;
- `margin_percent`: the real margin after discount (a margin floor is `below`), from
  the CRM's costs; a margin estimated from the flat cost ratio counts only for a rule
  with `estimated: true`;
- `amount`: the list amount;
- `payment_terms_days`, `contract_months`: payment terms and contract length;
- `non_standard_terms`: 1 when the deal is flagged as non-standard (use `above: 0`).

An approval of a rule records the metric's value; new terms ask the rule again only when
its metric moved past that value in the risky direction (`workflows.kit.quote_rules`).
Ops also set here the SLA of an approver's question to the rep (`info_request`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from workflows.policy_rules import Clock, Duration, _Strict

Metric = Literal[
    "discount_percent",
    "max_line_discount_percent",
    "margin_percent",
    "amount",
    "payment_terms_days",
    "contract_months",
    "non_standard_terms",
]


class QuoteRule(_Strict):
    """One approval rule over the quote: when it fires, and who approves it."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    description: str = ""
    metric: Metric
    above: float | None = Field(default=None, description="Fires when the metric is above.")
    below: float | None = Field(default=None, description="Fires when the metric is below.")
    approvers: list[str] = Field(min_length=1, description="Roles asked first.")
    estimated: bool = Field(
        default=False,
        description="For margin_percent: also fire on a margin estimated from the flat "
        "cost ratio (by default only costs from the CRM count).",
    )
    sla: Duration = timedelta(days=1)
    remind_before: Duration = timedelta(hours=4)
    escalate_to: str | None = Field(default=None, description="Role asked when `sla` passes.")
    escalation_sla: Duration = timedelta(days=1)
    then_escalate_to: list[str] = Field(default_factory=list)
    decision: Literal["any", "all"] | Annotated[int, Field(ge=1)] = "any"

    @model_validator(mode="after")
    def _one_threshold(self) -> QuoteRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.remind_before and self.remind_before >= self.sla:
            raise ValueError("remind_before must be shorter than sla")
        return self

    @property
    def risky_when_high(self) -> bool:
        return self.above is not None

    def fires(self, value: float | None) -> bool:
        """Does the rule fire for `value` (None: the quote does not say, never fires)?"""
        if value is None:
            return False
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below

    @property
    def chain(self) -> list[str]:
        """The approver chain in order: approvers, escalation, further escalations."""
        escalation = [self.escalate_to] if self.escalate_to else []
        return [*self.approvers, *escalation, *self.then_escalate_to]


#: The default SLA of an approver's question to the rep.
DEFAULT_INFO_CLOCK = Clock(sla=timedelta(days=2), remind_before=timedelta(hours=8))


def quote_rule_problems(rules: list[QuoteRule], roles: set[str], tiers: set[str]) -> list[str]:
    """Unknown roles, duplicate names, names that clash with a discount tier."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        where = f"quote_rules.{i}"
        if rule.name in seen or rule.name in tiers:
            problems.append(f"{where}.name: {rule.name!r} is already a rule or tier name")
        seen.add(rule.name)
        for role in rule.chain:
            if role not in roles:
                problems.append(f"{where}: unknown role {role!r} (known: {sorted(roles)})")
    return problems
