"""Property-based checks of the approval ladder and of signal validation (hypothesis,
derandomized so CI sees the same examples every run)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows import messages
from workflows.kit import dispatch
from workflows.kit.ladder import covers, missing_steps, required_steps
from workflows.policy import Policy, default_policy, parse_policy
from workflows.records import ApprovalRecord, Terms

FAST = settings(max_examples=200, deadline=None, derandomize=True)
ROLES = ["sales_manager", "vp_sales", "cfo"]
BASE = default_policy().model_dump(mode="json")
discounts = st.floats(min_value=0, max_value=100, allow_nan=False)


@st.composite
def ladders(draw: st.DrawFn) -> Policy:
    """A valid policy whose tiers ascend strictly to 100, some automatic, some approving."""
    inner = draw(st.lists(st.integers(1, 99), max_size=5, unique=True))
    ceilings = [*sorted(inner), 100]
    tiers = [
        {"name": f"t{i}", "up_to_percent": c, "approvers": draw(st.lists(st.sampled_from(ROLES),
                                                                         max_size=2, unique=True))}
        for i, c in enumerate(ceilings)
    ]  # fmt: skip
    return parse_policy({**BASE, "discounts": {**BASE["discounts"], "tiers": tiers}})


def approval(
    tier: str, discount: float, amount: float, decision: str = "approved"
) -> ApprovalRecord:
    return ApprovalRecord(
        tier=tier, decision=decision, approver="x@example.com", reason="r",  # type: ignore[arg-type]
        at=datetime(2026, 1, 1, tzinfo=UTC), round=1, discount_percent=discount, amount=amount,
    )  # fmt: skip


@FAST
@given(ladders(), discounts)
def test_tier_for_picks_the_first_tier_whose_ceiling_covers_the_discount(
    policy: Policy, discount: float
) -> None:
    """tier_for(d) is the first tier with up_to_percent >= d; every earlier one is below d."""
    tiers = policy.discounts.tiers
    i = policy.discounts.tier_for(discount)
    assert tiers[i].up_to_percent >= discount
    assert all(t.up_to_percent < discount for t in tiers[:i])


@FAST
@given(ladders(), discounts)
def test_required_steps_are_exactly_the_approving_tiers_up_to_the_discounts_tier(
    policy: Policy, discount: float
) -> None:
    """The steps are the tiers with approvers up to (and including) the discount's tier."""
    tiers = policy.discounts.tiers[: policy.discounts.tier_for(discount) + 1]
    expected = [t.name for t in tiers if t.approvers] if discount > 0 else []
    steps = required_steps(policy, Terms(amount=1000, discount_percent=discount))
    assert [s.tier for s in steps] == expected
    assert all(s.approvers for s in steps)


@FAST
@given(ladders(), discounts, discounts, st.floats(1, 1e6), st.floats(1, 1e6))
def test_an_approval_never_covers_more_than_it_approved(
    policy: Policy, approved: float, asked: float, approved_amount: float, asked_amount: float
) -> None:
    """covers() holds only when the capped discount and the amount did not rise."""
    for step in required_steps(policy, Terms(amount=asked_amount, discount_percent=asked)):
        record = approval(step.tier, approved, approved_amount)
        terms = Terms(amount=asked_amount, discount_percent=asked)
        ok = covers(record, step, terms)
        assert ok == (
            min(asked, step.up_to_percent) <= min(approved, step.up_to_percent)
            and asked_amount <= approved_amount
        )
        assert not covers(approval(step.tier, approved, approved_amount, "rejected"), step, terms)


@FAST
@given(ladders(), discounts, st.lists(discounts, min_size=2, max_size=2))
def test_re_approval_is_monotone_in_the_discount(
    policy: Policy, approved: float, pair: list[float]
) -> None:
    """After approvals at one discount, a higher new discount never needs fewer tiers asked."""
    amount = 50_000.0
    given_approvals = [
        approval(s.tier, approved, amount)
        for s in required_steps(policy, Terms(amount=amount, discount_percent=approved))
    ]
    low, high = sorted(pair)

    def again(d: float) -> set[str]:
        terms = Terms(amount=amount, discount_percent=d)
        return {s.tier for s in missing_steps(policy, terms, given_approvals)}

    assert again(low) <= again(high)
    assert again(min(low, approved)) == set()


MODELS: list[type[BaseModel]] = [
    messages.EvidenceIn, messages.DecisionIn, messages.TermsIn, messages.ExceptionIn,
    messages.AcceptIn, messages.DelegateIn, messages.RecallIn, messages.DealChangedIn,
]  # fmt: skip
FIELD_NAMES = sorted({f for m in MODELS for f in m.model_fields} | {"color", ""})
#: Unknown keys are identifiers, so a refusal can be split back into the fields it names.
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
payloads = st.dictionaries(st.sampled_from(FIELD_NAMES) | KEYS, json_values, max_size=6)


@pytest.fixture(autouse=True)
def outside_a_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """`parse` asks the workflow for its payload converter; give it the worker's one."""
    monkeypatch.setattr(
        dispatch.workflow, "payload_converter", lambda: pydantic_data_converter.payload_converter
    )


def raw(value: Any) -> RawValue:
    return RawValue(pydantic_data_converter.payload_converter.to_payloads([value])[0])


@FAST
@given(st.sampled_from(MODELS), payloads)
def test_any_payload_object_is_a_valid_message_or_a_refusal_naming_fields(
    model: type[BaseModel], payload: dict[str, Any]
) -> None:
    """parse() never raises: a model instance, or a one-line reason naming the bad fields."""
    result = dispatch.parse(model, [raw(payload)])
    if isinstance(result, dispatch.No):
        assert result.code == "invalid" and result.reason
        assert "\n" not in result.reason
        named = {part.split(":")[0].split(".")[0] for part in result.reason.split("; ")}
        assert named <= {*model.model_fields, *payload, "payload"}, (named, result)
    else:
        assert isinstance(result, model)
        assert set(payload) <= set(model.model_fields)


@FAST
@given(st.sampled_from(MODELS), json_values.filter(lambda v: not isinstance(v, dict)))
def test_any_non_object_payload_is_refused_as_not_an_object(
    model: type[BaseModel], value: Any
) -> None:
    """A list, string, number or null is refused with the fields the message expects."""
    result = dispatch.parse(model, [raw(value)])
    assert isinstance(result, dispatch.No) and result.code == "invalid"
    assert result.reason.startswith("expected a JSON object with fields")


@FAST
@given(
    st.sampled_from(MODELS),
    st.lists(payloads, min_size=0, max_size=3).filter(lambda v: len(v) != 1),
)
def test_zero_or_several_arguments_are_refused(model: type[BaseModel], args: list[Any]) -> None:
    """Only exactly one argument is a message."""
    result = dispatch.parse(model, [raw(a) for a in args])
    assert isinstance(result, dispatch.No) and result.code == "invalid"
    assert result.reason == f"expected exactly one JSON object as input, got {len(args)} arguments"
