"""The registry of handoff types: ids, parsing, visibility and what the worker registers."""

from __future__ import annotations

import re

import pytest

from worker.processes.worker import WORKFLOWS
from workflows import registry
from workflows.change_feed import ChangeFeed
from workflows.discount_approval import DiscountApproval
from workflows.names import handoff_id, lead_to_cash_id, renewal_id
from workflows.policy import default_policy
from workflows.records import Terms
from workflows.renewal import RenewalInput


def test_workflow_ids_are_type_crm_and_deal() -> None:
    """Every type's id is `<type>-<crm>-<deal id>`; the old helpers agree with it."""
    assert (
        registry.get("lead-to-cash").workflow_id("hubspot", "1001") == "lead-to-cash-hubspot-1001"
    )
    assert registry.get("renewal").workflow_id("salesforce", "006X") == "renewal-salesforce-006X"
    assert lead_to_cash_id("hubspot", "7") == handoff_id("lead-to-cash", "hubspot", "7")
    assert renewal_id("memory", "7") == handoff_id("renewal", "memory", "7")


@pytest.mark.parametrize("handoff_type", registry.HANDOFF_TYPES, ids=lambda t: t.name)
def test_a_workflow_id_parses_back_to_its_type_crm_and_deal(
    handoff_type: registry.HandoffType,
) -> None:
    """Parsing an id gives back the type, CRM and deal id, even with hyphens in the deal."""
    wf_id = handoff_type.workflow_id("hubspot", "10-01")
    assert registry.parse_workflow_id(wf_id) == (handoff_type, "hubspot", "10-01")


def test_ids_of_no_registered_type_do_not_parse() -> None:
    """A deal id or a foreign workflow id is not mistaken for a handoff."""
    assert registry.parse_workflow_id("1001") is None
    assert registry.parse_workflow_id("change-feed-salesforce") is None
    assert registry.parse_workflow_id("renewal-hubspot") is None


def test_an_unknown_type_is_refused_with_the_allowed_names() -> None:
    """`get` names every registered type when the name is wrong (and any `handoff new`
    added after these two)."""
    assert registry.type_names()[:2] == ["lead-to-cash", "renewal"]
    allowed = ", ".join(registry.type_names())
    with pytest.raises(registry.UnknownHandoffType, match=f"allowed: {re.escape(allowed)}$"):
        registry.get("upsell")


def test_a_type_has_a_ladder_when_its_workflow_declares_one() -> None:
    """Which types' approvals reach inboxes is what their workflow classes declare: the
    two built-in types hold a desk; a workflow that declares none has no ladder."""
    assert registry.get("lead-to-cash").has_ladder and registry.get("renewal").has_ladder
    no_desk = registry.HandoffType("feed", ChangeFeed, registry.get("renewal").build_input)
    assert not no_desk.has_ladder


def test_visibility_clause_lists_every_types_workflow() -> None:
    """The `WorkflowType IN (...)` clause names each registered workflow type once."""
    clause = registry.visibility_clause()
    for t in registry.HANDOFF_TYPES:
        assert f"'{t.workflow_type}'" in clause
    assert clause.startswith("WorkflowType IN (") and "RenewalExpansion" in clause


def test_the_worker_registers_every_type_plus_feed_and_legacy_child() -> None:
    """The worker's workflows come from the registry, with the feed and the old child."""
    assert set(WORKFLOWS) == {
        *(t.workflow for t in registry.HANDOFF_TYPES),
        ChangeFeed,
        DiscountApproval,
    }


def test_renewal_input_carries_the_closed_deals_context() -> None:
    """A renewal built with carried terms starts from them and names its predecessor."""
    policy = default_policy()
    carried = registry.Carried(
        from_workflow_id="lead-to-cash-memory-9", terms=Terms(amount=50_000, discount_percent=5)
    )
    inp = registry.get("renewal").start_input("memory", "9", policy, carried)
    assert isinstance(inp, RenewalInput)
    assert inp.from_workflow_id == "lead-to-cash-memory-9" and inp.terms == carried.terms
    assert inp.policy_version == policy.version
