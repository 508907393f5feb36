"""Choosing and building the CRM connector from settings (the only place that knows all)."""

from __future__ import annotations

from connectors.base import CrmConnector, Deal
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
        return _salesforce(settings, overrides)
    return MemoryConnector(deals=sample_deals())


def _salesforce(settings: Settings, overrides: dict[str, str]) -> CrmConnector:
    """Salesforce auth mode from which credentials are set: session id, JWT key file,
    client credentials, or username/password (SOAP, or OAuth with a consumer key)."""
    from connectors.salesforce import SalesforceAuth, SalesforceConnector

    s = settings
    if s.salesforce_session_id:
        auth = SalesforceAuth(
            mode="session",
            session_id=s.salesforce_session_id,
            instance_url=s.salesforce_instance_url,
        )
    elif s.salesforce_private_key_file:
        auth = SalesforceAuth(
            mode="jwt_bearer",
            username=s.salesforce_username,
            consumer_key=s.salesforce_consumer_key,
            private_key_file=s.salesforce_private_key_file,
            domain=s.salesforce_domain,
        )
    elif s.salesforce_username:
        auth = SalesforceAuth(
            mode="password",
            username=s.salesforce_username,
            password=s.salesforce_password,
            security_token=s.salesforce_security_token,
            consumer_key=s.salesforce_consumer_key,
            consumer_secret=s.salesforce_consumer_secret,
            domain=s.salesforce_domain,
        )
    else:
        auth = SalesforceAuth(
            mode="client_credentials",
            consumer_key=s.salesforce_consumer_key,
            consumer_secret=s.salesforce_consumer_secret,
            domain=s.salesforce_domain,
        )
    return SalesforceConnector(
        auth,
        login_host=s.salesforce_login_host,
        ca_file=s.salesforce_ca_file,
        field_mapping=overrides,
    )


def sample_deals() -> list[Deal]:
    """The in-memory CRM starts with the HubSpot sandbox's seeded deals (1001, 1002...),
    read through the HubSpot field mapping, so the demo is the same on every CRM."""
    from connectors.hubspot import DEFAULT_MAPPING

    try:
        import worker.devtools  # noqa: F401 (puts the checkout's sandbox/ on the path)
        from sandbox.hubspot_schema import SEED
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "the memory CRM is for development; its sample deals come from the sandbox: "
            "pip install 'handoff[dev]' in a checkout"
        ) from exc

    deals = []
    for object_type, record_id, props in SEED:
        if object_type != "deals":
            continue
        fields = DEFAULT_MAPPING.from_crm(props)
        deals.append(
            Deal(
                id=record_id,
                name=fields.pop("name", ""),
                crm_stage=fields.pop("crm_stage", ""),
                amount=float(fields.pop("amount", 0)),
                discount_percent=float(fields.pop("discount_percent", 0)),
                owner_email=fields.pop("owner_email", ""),
                fields=fields,
            )
        )
    return deals
