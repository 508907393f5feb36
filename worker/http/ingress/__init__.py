"""Webhook ingress: CRM events in, workflow starts and signals out.

Each CRM's router (`worker.http.ingress.hubspot`) checks the request's signature, parses and
orders the events, drops duplicates, and tells a `WebhookStarter` what happened. The
starter is implemented against Temporal (signal-with-start on the deterministic
workflow ID), so the routers never import a Temporal client and tests use a fake.
"""

from __future__ import annotations

from activities.feed import DealEvents

#: The ingress routers deliver to the same sink as the Salesforce change feed.
WebhookStarter = DealEvents

__all__ = ["WebhookStarter"]
