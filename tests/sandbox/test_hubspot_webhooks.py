"""The HubSpot sandbox delivers signed v3 webhooks for deal creation and property
changes, in batches, at least once, retried on failure; off unless subscribed.
Signatures are checked with hubspot-api-client's own validator."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from hubspot import HubSpot
from hubspot.crm.deals import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.utils.signature import Signature
from starlette.requests import Request
from starlette.responses import Response
from support.hubspot import TOKEN, HubSpotSandbox, running_sandbox

from sandbox.common import free_port, serve_in_thread

SECRET = "app-secret-for-tests"


@dataclass
class Receiver:
    """A webhook target: records every delivery; the first `fail` deliveries get a 500."""

    url: str = ""
    fail: int = 0
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for d in self.deliveries if d["status"] == 200 for e in d["events"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    app = FastAPI()

    @app.post("/hooks/hubspot")
    async def hook(request: Request) -> Response:
        body = await request.body()
        with target.lock:
            status = 500 if target.fail > 0 else 200
            target.fail -= 1
            target.deliveries.append(
                {"headers": dict(request.headers), "body": body.decode(), "status": status,
                 "events": json.loads(body)}
            )  # fmt: skip
        return Response(status_code=status)

    with serve_in_thread(app, port=free_port()) as base:
        target.url = f"{base}/hooks/hubspot?app=handoff"
        yield target


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


def subscribe(sb: HubSpotSandbox, receiver: Receiver, **settings: Any) -> None:
    body = {"target_url": receiver.url, "client_secret": SECRET, "linger_ms": 100, **settings}
    sb.control("POST", "webhooks/subscribe", body)


def until(check: Callable[[], bool], within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def new_deal(sb: HubSpotSandbox, name: str = "Hooked") -> str:
    response = sb.api("POST", "/crm/v3/objects/deals", json={"properties": {"dealname": name}})
    deal_id: str = response.json()["id"]
    return deal_id


def test_webhooks_are_off_by_default(sb: HubSpotSandbox, receiver: Receiver) -> None:
    """Without a subscription, deal writes produce no events and no delivery."""
    new_deal(sb)
    time.sleep(0.5)
    assert sb.control("GET", "webhooks")["events"] == 0
    assert receiver.deliveries == []


def test_creation_and_property_change_arrive_signed(sb: HubSpotSandbox, receiver: Receiver) -> None:
    """A deal created and then edited through the client arrives as deal.creation and
    deal.propertyChange events, signed v3 over the full target URL."""
    subscribe(sb, receiver)
    deals = HubSpot(access_token=TOKEN, host=sb.base).crm.deals.basic_api
    deal = deals.create(SimplePublicObjectInputForCreate(properties={"dealname": "Signed"}))
    deals.update(deal.id, SimplePublicObjectInput(properties={"amount": "4200"}))
    until(lambda: len(receiver.events()) >= 2)
    creation, change = receiver.events()[:2]
    assert (creation["subscriptionType"], creation["objectId"], creation["changeFlag"]) == (
        "deal.creation",
        int(deal.id),
        "NEW",
    )
    assert (change["subscriptionType"], change["propertyName"], change["propertyValue"]) == (
        "deal.propertyChange",
        "amount",
        "4200",
    )
    assert change["occurredAt"] >= creation["occurredAt"]
    assert creation["eventId"] != change["eventId"]
    for delivery in receiver.deliveries:
        headers = delivery["headers"]
        assert Signature.is_valid(
            signature=headers["x-hubspot-signature-v3"],
            client_secret=SECRET,
            request_body=delivery["body"],
            http_uri=receiver.url,
            signature_version="v3",
            timestamp=headers["x-hubspot-request-timestamp"],
        )
        assert not Signature.is_valid(
            signature=headers["x-hubspot-signature-v3"],
            client_secret="another-secret",
            request_body=delivery["body"],
            http_uri=receiver.url,
            signature_version="v3",
            timestamp=headers["x-hubspot-request-timestamp"],
        )


def test_a_batch_create_is_delivered_in_batches_of_max_batch(
    sb: HubSpotSandbox, receiver: Receiver
) -> None:
    """Five deals from one batch create arrive as five creation events, at most two a POST."""
    subscribe(sb, receiver, max_batch=2, linger_ms=300)
    batch = HubSpot(access_token=TOKEN, host=sb.base).crm.deals.batch_api
    created = batch.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(properties={"dealname": f"B{i}"})
                for i in range(5)
            ]
        )
    )
    until(lambda: len(receiver.events()) >= 5)
    assert sorted(e["objectId"] for e in receiver.events()) == sorted(
        int(r.id) for r in created.results
    )
    sizes = [len(d["events"]) for d in receiver.deliveries]
    assert max(sizes) == 2  # batched, and never more than max_batch


def test_a_failed_delivery_is_retried_until_it_succeeds(
    sb: HubSpotSandbox, receiver: Receiver
) -> None:
    """The target answers 500 twice: the batch comes again with attemptNumber 1, then 2."""
    receiver.fail = 2
    subscribe(sb, receiver, retry_base_ms=50)
    deal = new_deal(sb)
    until(lambda: len(receiver.events()) == 1)
    attempts = [(d["status"], d["events"][0]["attemptNumber"]) for d in receiver.deliveries]
    assert attempts == [(500, 0), (500, 1), (200, 2)]
    assert {d["events"][0]["eventId"] for d in receiver.deliveries} == {
        receiver.events()[0]["eventId"]
    }
    assert receiver.events()[0]["objectId"] == int(deal)
    # the sandbox counts the delivery once the 200 is back, a moment after the receiver
    # recorded it: wait for that instead of reading it at once (it raced under load)
    until(lambda: sb.control("GET", "webhooks")["delivered_events"] == 1)
    status = sb.control("GET", "webhooks")
    assert (status["failed_attempts"], status["delivered_events"], status["pending"]) == (2, 1, 0)


def test_a_batch_is_dropped_after_max_attempts(sb: HubSpotSandbox, receiver: Receiver) -> None:
    """A target that always fails gets max_attempts tries, then the events are dropped."""
    receiver.fail = 1_000
    subscribe(sb, receiver, retry_base_ms=20, max_attempts=3)
    new_deal(sb)
    until(lambda: sb.control("GET", "webhooks")["dropped_events"] == 1)
    assert len(receiver.deliveries) == 3
    assert receiver.events() == []


def test_property_changes_can_be_limited_to_some_properties(
    sb: HubSpotSandbox, receiver: Receiver
) -> None:
    """With properties=[dealstage], an amount edit sends nothing and a stage edit one event."""
    subscribe(sb, receiver, subscriptions=["deal.propertyChange"], properties=["dealstage"])
    sb.api("PATCH", "/crm/v3/objects/deals/1002", json={"properties": {"amount": "1"}})
    sb.api("PATCH", "/crm/v3/objects/deals/1002", json={"properties": {"dealstage": "closedlost"}})
    until(lambda: len(receiver.events()) >= 1)
    time.sleep(0.3)
    assert [(e["propertyName"], e["propertyValue"]) for e in receiver.events()] == [
        ("dealstage", "closedlost")
    ]


class RecordingStarter:
    """Handoff's WebhookStarter, recording each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        self.calls.append(("trigger", crm, deal_id))

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        self.calls.append(("evidence", crm, deal_id, kind))

    async def deal_changed(
        self,
        crm: str,
        deal_id: str,
        fields: dict[str, str],
        event_id: str,
        occurred_at: datetime | None = None,
        changed_by: str | None = None,
    ) -> None:
        self.calls.append(("changed", crm, deal_id, fields))


def test_handoffs_own_ingress_accepts_the_deliveries(sb: HubSpotSandbox) -> None:
    """Subscribed to Handoff's webhook ingress, a created deal starts it and an amount edit
    reaches it as deal_changed: signatures, URL and payload are what the ingress expects."""
    from pydantic import SecretStr

    from connectors.hubspot import DEFAULT_MAPPING
    from worker.http.ingress.hubspot import build_router
    from workflows.policy import default_policy

    starter = RecordingStarter()
    app = FastAPI()
    app.include_router(
        build_router(
            client_secret=SecretStr(SECRET),
            starter=starter,
            policy=default_policy(),
            mapping=DEFAULT_MAPPING,
        )
    )
    with serve_in_thread(app, port=free_port()) as base:
        sb.control(
            "POST",
            "webhooks/subscribe",
            {"target_url": f"{base}/webhooks/hubspot", "client_secret": SECRET, "linger_ms": 50},
        )
        deal = new_deal(sb, "Through the ingress")
        until(lambda: ("trigger", "hubspot", deal) in starter.calls)
        sb.api("PATCH", f"/crm/v3/objects/deals/{deal}", json={"properties": {"amount": "777"}})
        until(lambda: any(c[0] == "changed" for c in starter.calls))
    changed = [c for c in starter.calls if c[0] == "changed"]
    assert changed == [("changed", "hubspot", deal, {"amount": "777"})]
    assert sb.control("GET", "webhooks")["failed_attempts"] == 0
