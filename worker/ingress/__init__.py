"""Webhook ingress: CRM events in, workflow starts and signals out.

Each CRM's router (`worker.ingress.hubspot`) checks the request's signature, parses and
orders the events, drops duplicates, and tells a `WebhookStarter` what happened. The
starter is implemented against Temporal (signal-with-start on the deterministic
workflow ID), so the routers never import a Temporal client and tests use a fake.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class WebhookStarter(Protocol):
    """What the ingress asks of the workflow side. Every method is idempotent by `event_id`:
    the workflow deduplicates on it, so at-least-once delivery is safe."""

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        """The deal was created or entered a trigger stage: start its lead-to-cash workflow
        (signal-with-start, ID ``lead-to-cash-<crm>-<deal>``); a no-op if already started."""
        ...

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        """A CRM field proving evidence `kind` became truthy: signal ``add_evidence``."""
        ...

    async def deal_changed(
        self, crm: str, deal_id: str, fields: dict[str, str], event_id: str
    ) -> None:
        """Other mapped fields changed (canonical name → new value): signal ``deal_changed``."""
        ...
