"""Quote rules in a policy file: bad ones fail at load naming the field; the shipped
default asks the CFO over 40% on a line and the VP under a 20% margin; a past approval
covers a rule until its metric moves past the approved value."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.lines import QuoteLine
from workflows.kit.ladder import missing_steps, required_steps
from workflows.policy import PolicyError, default_policy, parse_policy
from workflows.quote import with_lines
from workflows.records import ApprovalRecord, Terms

RULE = {"name": "probe", "metric": "amount", "above": 10, "approvers": ["cfo"]}
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no threshold", {"above": None}, "give exactly one of above or below"),
    ("two thresholds", {"below": 5}, "give exactly one of above or below"),
    ("unknown metric", {"metric": "vibes"}, "quote_rules.0.metric"),
    ("unknown role", {"approvers": ["wizard"]}, "quote_rules.0: unknown role 'wizard'"),
    ("unknown escalation", {"escalate_to": "ghost"}, "unknown role 'ghost'"),
    ("no approvers", {"approvers": []}, "quote_rules.0.approvers"),
    ("clashes with a tier", {"name": "vp"}, "quote_rules.0.name: 'vp' is already"),
    ("bad name", {"name": "Bad Name!"}, "quote_rules.0.name"),
    ("reminder after due", {"sla": "1h", "remind_before": "2h"}, "remind_before must be"),
]


@pytest.mark.parametrize(("case", "change", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_quote_rule_fails_at_load_naming_the_field(
    case: str, change: dict[str, Any], fragment: str
) -> None:
    """Each broken rule raises PolicyError naming the rule and what is wrong."""
    data = copy.deepcopy(default_policy().model_dump(mode="json"))
    data["quote_rules"] = [{**RULE, **change}]
    with pytest.raises(PolicyError) as info:
        parse_policy(data)
    assert fragment in str(info.value), (case, str(info.value))


def test_a_policy_without_quote_rules_keeps_its_version() -> None:
    """Older policy files (no quote rules) hash as they did, so nothing looks changed."""
    data = default_policy().model_dump(mode="json")
    del data["quote_rules"], data["info_request"]
    old = parse_policy(data)
    assert old.quote_rules == []
    dumped = old.model_dump(mode="json")
    assert "quote_rules" in dumped  # the model has them; the version leaves them out
    assert old.version != default_policy().version


def line(off: float, cost: float | None = 100.0, price: float = 1000.0) -> QuoteLine:
    return QuoteLine(name="x", quantity=1, unit_price=price, discount_percent=off, unit_cost=cost)


def quote(*lines: QuoteLine) -> Terms:
    return with_lines(Terms(), list(lines))


def test_the_default_policy_asks_cfo_above_40_on_a_line_and_vp_below_a_20_margin() -> None:
    """Shipped rules: a 41% line → CFO; a 15% margin from costs → VP, whatever discount."""
    policy = default_policy()
    steps = required_steps(policy, quote(line(0, price=9000), line(41)), quote=True)
    assert [(s.tier, s.approvers) for s in steps] == [("line_discount", ["carla.cfo@example.com"])]
    steps = required_steps(policy, quote(line(0, cost=850)), quote=True)
    assert [(s.tier, s.approvers) for s in steps] == [("margin_floor", ["victor.vp@example.com"])]
    assert required_steps(policy, quote(line(40), line(0, price=9000)), quote=True) == []


def test_rules_apply_only_to_handoffs_that_read_their_quote() -> None:
    """A handoff opened before quote lines (quote=False) asks the discount tiers only."""
    assert required_steps(default_policy(), quote(line(0, cost=850)), quote=False) == []


def approval(tier: str, value: float) -> ApprovalRecord:
    return ApprovalRecord(
        tier=tier,
        decision="approved",
        approver="carla.cfo@example.com" if tier == "line_discount" else "victor.vp@example.com",
        reason="ok",
        at=datetime.now(UTC),
        round=1,
        discount_percent=0,
        amount=0,
        value=value,
    )


@pytest.mark.parametrize(
    ("terms", "given", "still_asked"),
    [
        (quote(line(0, price=9000), line(44)), approval("line_discount", 45), []),
        (
            quote(line(0, price=9000), line(46)),
            approval("line_discount", 45),
            ["line_discount"],
        ),
        (quote(line(0, cost=830)), approval("margin_floor", 15), []),
        (quote(line(0, cost=900)), approval("margin_floor", 15), ["margin_floor"]),
    ],
    ids=["line less deep", "line deeper", "margin better", "margin worse"],
)
def test_an_approval_covers_a_rule_until_its_metric_moves_past_it(
    terms: Terms, given: ApprovalRecord, still_asked: list[str]
) -> None:
    """Smart re-approval: only a move past the approved value, the risky way, re-asks."""
    steps = missing_steps(default_policy(), terms, [given], quote=True)
    assert [s.tier for s in steps] == still_asked


def test_the_deals_own_discount_applies_on_top_of_its_lines() -> None:
    """Salesforce's seeded Acme rollout: lines at list (48,000) and 30% on the deal is a
    30% quote; without lines the deal's discount is the discount."""
    lines = [line(0, cost=12_000, price=40_000), line(0, cost=5000, price=8000)]
    terms = with_lines(Terms(deal_discount_percent=30), lines)
    assert (terms.amount, terms.discount_percent, terms.net) == (48_000, 30, 33_600)
    assert terms.margin_percent(0.6) == pytest.approx(49.4)
    assert with_lines(Terms(amount=10, deal_discount_percent=12), []).discount_percent == 12
