"""Workflow inputs carry the whole policy; a worker decodes each distinct policy once and
every run on it shares that one read-only copy (`workflows.policy.SharedPolicy`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.change_feed import ChangeFeedInput
from workflows.kit.state import HandoffState
from workflows.lead_to_cash import LeadToCashInput
from workflows.policy import Policy, default_policy
from workflows.renewal import RenewalInput

CONVERTER = pydantic_data_converter.payload_converter


def round_trip(value: Any) -> Any:
    """Encode `value` and decode it as a worker decodes a workflow's input."""
    return CONVERTER.from_payloads(CONVERTER.to_payloads([value]), [type(value)])[0]


def lead_to_cash(policy: Policy, deal: str) -> LeadToCashInput:
    return LeadToCashInput(crm="hubspot", deal_id=deal, policy=policy, policy_version="v")


def test_runs_started_on_one_policy_share_one_decoded_copy() -> None:
    """Two deals' inputs with the same policy decode to one Policy object, equal to the
    policy they were started with."""
    policy = default_policy()
    first, second = round_trip(lead_to_cash(policy, "1")), round_trip(lead_to_cash(policy, "2"))
    assert first.deal_id == "1" and second.deal_id == "2"
    assert first.policy is second.policy
    assert first.policy == policy and first.policy is not policy


def test_every_input_and_a_moved_policy_share_it() -> None:
    """Renewal, the change feed and a policy ops moved a handoff to share the same copy."""
    policy = default_policy()
    shared = round_trip(lead_to_cash(policy, "1")).policy
    renewal = round_trip(
        RenewalInput(crm="hubspot", deal_id="1", policy=policy, policy_version="v")
    )
    feed = round_trip(ChangeFeedInput(crm="hubspot", policy=policy))
    state = round_trip(HandoffState(crm="hubspot", deal_id="1", stage="qualify"))
    moved = round_trip(state.model_copy(update={"moved_policy": policy}))
    assert renewal.policy is shared and feed.policy is shared and moved.moved_policy is shared
    assert state.moved_policy is None


def test_a_different_policy_is_its_own_copy() -> None:
    """A policy that differs in one setting decodes to its own object with its own value;
    the first policy's runs keep theirs."""
    policy = default_policy()
    other = policy.model_copy(update={"currency": "EUR"})
    mine = round_trip(lead_to_cash(policy, "1")).policy
    theirs = round_trip(lead_to_cash(other, "2")).policy
    assert theirs is not mine
    assert (mine.currency, theirs.currency) == ("USD", "EUR")
    assert round_trip(lead_to_cash(policy, "3")).policy is mine


def test_a_policy_that_does_not_validate_is_refused_every_time() -> None:
    """Bad policy data fails to decode, also the second time: nothing is kept for it."""
    data = lead_to_cash(default_policy(), "1").model_dump(mode="json")
    data["policy"]["people"]["sales_manager"] = "not a list"
    for _ in range(2):
        with pytest.raises(ValidationError, match="sales_manager"):
            LeadToCashInput.model_validate_json(json.dumps(data))
