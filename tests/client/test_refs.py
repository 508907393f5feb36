"""Addressing a handoff: (type, crm, deal id), or a workflow id in place of the deal id."""

from __future__ import annotations

import pytest

from worker.client.handoffs import HandoffNotFound, HandoffRef, running_query
from workflows import registry


def test_type_defaults_to_lead_to_cash() -> None:
    """No type given: the deal's lead-to-cash handoff."""
    ref = HandoffRef.of(None, "hubspot", "1001")
    assert (ref.type.name, ref.workflow_id) == ("lead-to-cash", "lead-to-cash-hubspot-1001")


def test_a_workflow_id_names_its_own_type_and_crm() -> None:
    """`renewal-salesforce-006X` in place of the deal id wins over --type and --crm."""
    ref = HandoffRef.of(None, "hubspot", "renewal-salesforce-006X")
    assert (ref.type.name, ref.crm, ref.deal_id) == ("renewal", "salesforce", "006X")


def test_an_unknown_type_is_refused() -> None:
    """A type that is not registered fails before anything is sent."""
    with pytest.raises(registry.UnknownHandoffType):
        HandoffRef.of("upsell", "hubspot", "1001")


def test_a_foreign_workflow_id_is_not_a_handoff() -> None:
    """`from_workflow_id` refuses ids of no registered type."""
    with pytest.raises(HandoffNotFound):
        HandoffRef.from_workflow_id("change-feed-salesforce")


def test_running_query_uses_the_registry_and_quotes_values() -> None:
    """Listing queries name every type's workflow, never one literal, and escape values."""
    query = running_query(owner="o'brien@example.com")
    assert query.startswith(registry.visibility_clause())
    assert "WorkflowType = 'LeadToCash'" not in query
    assert "Owner = 'o\\'brien@example.com'" in query
    only = running_query([registry.get("renewal")])
    assert "'RenewalExpansion'" in only and "'LeadToCash'" not in only
