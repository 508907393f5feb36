"""Choosing and building the CRM connector from settings (the only place that knows all)."""

from __future__ import annotations

from connectors.base import CrmConnector
from connectors.memory import MemoryConnector
from worker.settings import Settings
from workflows.policy import Policy


def make_connector(settings: Settings, policy: Policy) -> CrmConnector:
    """The connector for `settings.crm`, with the policy's field-mapping overrides."""
    overrides = policy.field_mapping.get(settings.crm, {})
    if settings.crm == "hubspot":
        from connectors.hubspot import HubSpotConnector

        token = settings.hubspot_token or settings.sandbox_token
        return HubSpotConnector(access_token=token, host=settings.hubspot_host, mapping=overrides)
    if settings.crm == "salesforce":
        from connectors.salesforce import connector_from_settings

        return connector_from_settings(settings, overrides)
    return MemoryConnector(deals=sample_deals())


def sample_deals() -> list:  # type: ignore[type-arg]
    """The demo deals the in-memory CRM starts with (same ids as the sandboxes' seeds)."""
    from connectors.base import Deal

    return [
        Deal(
            id="1001",
            name="Acme Corp — platform rollout",
            crm_stage="new",
            amount=120_000.0,
            discount_percent=30.0,
            owner_email="sam.rep@example.com",
            fields={
                "scope": "Platform rollout for 3 sites",
                "start_date": "2026-12-01",
                "site_notes": "Badge access via reception",
                "primary_contact": "ada@acme.example",
                "promised": "Go-live before Q1 close",
                "billing_contact": "ap@acme.example",
                "po_number": "PO-7781",
            },
        ),
        Deal(
            id="1002",
            name="Globex — pilot",
            crm_stage="new",
            amount=18_000.0,
            discount_percent=5.0,
            owner_email="sam.rep@example.com",
            fields={"scope": "Pilot", "start_date": "2026-12-15"},
        ),
    ]
