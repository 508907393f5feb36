"""`TemporalStarter`: the `WebhookStarter` that turns CRM events into workflow messages.

Every event carries its id into the workflow, which remembers recent ids, so a webhook
delivered ten times has the effect of one delivery.
"""

from __future__ import annotations

from fastapi import APIRouter
from temporalio.client import Client

from worker.client.starter import signal_if_running, signal_with_start
from worker.settings import Settings
from workflows.messages import DealChangedIn, EvidenceIn
from workflows.names import Msg
from workflows.policy import Policy


class TemporalStarter:
    """Starts or signals `LeadToCash` workflows with deterministic IDs."""

    def __init__(self, client: Client, policy: Policy, task_queue: str) -> None:
        self.client, self.policy, self.task_queue = client, policy, task_queue

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        await signal_with_start(
            self.client,
            crm=crm,
            deal_id=deal_id,
            policy=self.policy,
            task_queue=self.task_queue,
            signal=Msg.DEAL_CHANGED,
            payload=DealChangedIn(source=crm, event_id=event_id).model_dump(),
        )

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        # not started yet: the workflow reads the same field from the CRM when it starts
        await signal_if_running(
            self.client,
            crm,
            deal_id,
            Msg.ADD_EVIDENCE,
            EvidenceIn(kind=kind, by=f"{crm}@crm", ref=f"{crm}-event:{event_id}").model_dump(),
        )

    async def deal_changed(
        self, crm: str, deal_id: str, fields: dict[str, str], event_id: str
    ) -> None:
        await signal_if_running(
            self.client,
            crm,
            deal_id,
            Msg.DEAL_CHANGED,
            DealChangedIn(fields=fields, source=crm, event_id=event_id).model_dump(),
        )


def ingress_routers(settings: Settings, client: Client) -> list[APIRouter]:
    """The webhook routers the configured CRM needs (HubSpot needs its app secret)."""
    from connectors.hubspot import DEFAULT_MAPPING
    from worker.http.ingress.hubspot import build_router
    from worker.policy import load_configured_policy

    if settings.crm != "hubspot" or settings.hubspot_app_secret is None:
        return []
    policy = load_configured_policy(settings)
    return [
        build_router(
            client_secret=settings.hubspot_app_secret,
            starter=TemporalStarter(client, policy, settings.task_queue),
            policy=policy,
            mapping=DEFAULT_MAPPING.overridden(policy.field_mapping.get("hubspot")),
            public_base_url=settings.public_url,
        )
    ]
