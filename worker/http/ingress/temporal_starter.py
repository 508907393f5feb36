"""`TemporalStarter`: the `WebhookStarter` that turns CRM events into workflow messages.

Every event carries its id into the workflow, which remembers recent ids, so a webhook
delivered ten times has the effect of one delivery.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from temporalio.client import Client

from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.settings import Settings
from workflows import registry
from workflows.messages import DealChangedIn, EvidenceIn
from workflows.names import LEAD_TO_CASH, Msg
from workflows.policy import Policy

if TYPE_CHECKING:
    from worker.policy import PolicySource


class TemporalStarter:
    """Starts or signals a deal's handoffs through the client path: a deal entering the
    trigger starts its lead-to-cash; a changed record reaches every running handoff of
    the deal, whatever its type (a renewal's terms change in the CRM too).

    Given a `PolicySource`, each start reads the policy file as it is now."""

    def __init__(self, client: Client, policy: Policy | PolicySource, task_queue: str) -> None:
        self.client, self._policy, self.task_queue = client, policy, task_queue

    @property
    def policy(self) -> Policy:
        return self._policy if isinstance(self._policy, Policy) else self._policy.current()

    @staticmethod
    def _ref(crm: str, deal_id: str, handoff_type: str = LEAD_TO_CASH) -> HandoffRef:
        # never parsed as a workflow id: the deal id comes from the CRM event
        return HandoffRef(registry.get(handoff_type), crm, deal_id)

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        ref = self._ref(crm, deal_id)
        reached = await handoffs.signal_with_start(
            self.client,
            ref,
            policy=self.policy,
            task_queue=self.task_queue,
            signal=Msg.DEAL_CHANGED,
            payload=DealChangedIn(source=crm, event_id=event_id).model_dump(),
        )
        if not reached:  # its handoff ended: if it ended lost, the deal is re-opened
            await handoffs.reopen(self.client, ref, policy=self.policy, task_queue=self.task_queue)

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        # not started yet: the workflow reads the same field from the CRM when it starts
        await handoffs.signal(
            self.client,
            self._ref(crm, deal_id),
            Msg.ADD_EVIDENCE,
            EvidenceIn(kind=kind, by=f"{crm}@crm", ref=f"{crm}-event:{event_id}").model_dump(),
        )

    async def deal_changed(
        self,
        crm: str,
        deal_id: str,
        fields: dict[str, str],
        event_id: str,
        occurred_at: datetime | None = None,
        changed_by: str | None = None,
    ) -> None:
        change = DealChangedIn(
            fields=fields,
            source=crm,
            event_id=event_id,
            occurred_at=occurred_at,
            changed_by=changed_by,
        )
        payload = change.model_dump(mode="json")
        reached = [
            await handoffs.signal(
                self.client, self._ref(crm, deal_id, name), Msg.DEAL_CHANGED, payload
            )
            for name in registry.type_names()
        ]
        if not any(reached) and fields.get("crm_stage") in self.policy.reopen_crm_stages:
            await handoffs.reopen(  # a lost deal re-opened: a new run, linked to the lost one
                self.client, self._ref(crm, deal_id), policy=self.policy, task_queue=self.task_queue
            )


def ingress_routers(settings: Settings, client: Client) -> list[APIRouter]:
    """The webhook routers the configured CRM needs (HubSpot needs its app secret)."""
    from connectors.hubspot import DEFAULT_MAPPING
    from worker.http.ingress.hubspot import build_router
    from worker.policy import PolicySource

    if settings.crm != "hubspot" or settings.hubspot_app_secret is None:
        return []
    source = PolicySource.from_settings(settings)  # read on each event: edits apply live
    return [
        build_router(
            client_secret=settings.hubspot_app_secret,
            starter=TemporalStarter(client, source, settings.task_queue),
            policy=source.current,
            mapping=DEFAULT_MAPPING.overridden(source.current().field_mapping.get("hubspot")),
            public_base_url=settings.public_url,
        )
    ]
