"""HubSpot webhook ingress: v3 signatures, dedup, ordering, routing and refusals."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature
from pydantic import SecretStr

from connectors.hubspot import DEFAULT_MAPPING
from connectors.mapping import FieldMapping
from worker.http.ingress import WebhookStarter
from worker.http.ingress.hubspot import build_router, sign_v3
from workflows.policy import default_policy

SECRET = "app-client-secret"
BASE = "https://handoff.example"
URI = f"{BASE}/webhooks/hubspot"


class RecordingStarter:
    """A fake WebhookStarter that records each call, in order, and can be made to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.changed_by: list[str | None] = []  # who each deal_changed names
        self.fail = False

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        self._record("trigger", crm, deal_id, event_id)

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        self._record("evidence", crm, deal_id, kind, event_id)

    async def deal_changed(
        self,
        crm: str,
        deal_id: str,
        fields: dict[str, str],
        event_id: str,
        occurred_at: datetime | None = None,
        changed_by: str | None = None,
    ) -> None:
        self._record("changed", crm, deal_id, fields, event_id)
        self.changed_by.append(changed_by)

    def _record(self, *call: Any) -> None:
        if self.fail:
            raise RuntimeError("temporal is down")
        self.calls.append(call)


def event(event_id: int, occurred_at: int = 1_700_000_000_000, **kw: Any) -> dict[str, Any]:
    base = {
        "eventId": event_id,
        "subscriptionId": 12,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": occurred_at,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": 1001,
        "changeSource": "CRM_UI",
    }
    return base | kw


def app_for(
    starter: RecordingStarter, mapping: FieldMapping = DEFAULT_MAPPING, **kw: Any
) -> FastAPI:
    app = FastAPI()
    router = build_router(
        client_secret=SecretStr(SECRET),
        starter=starter,
        policy=default_policy(),
        mapping=mapping,
        **kw,
    )
    app.include_router(router)
    return app


@pytest.fixture
def starter() -> RecordingStarter:
    return RecordingStarter()


@pytest.fixture
async def client(starter: RecordingStarter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(starter))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


async def deliver(
    http: httpx.AsyncClient,
    payload: Any,
    *,
    secret: str = SECRET,
    stamp: int | None = None,
    raw: bytes | None = None,
    signed_body: bytes | None = None,
    path: str = "/webhooks/hubspot",
) -> httpx.Response:
    """POST like HubSpot does: signed over method, full URI, raw body and ms timestamp."""
    body = raw if raw is not None else json.dumps(payload).encode()
    stamp = stamp if stamp is not None else int(time.time() * 1000)
    signature = sign_v3(secret, "POST", f"{BASE}{path}", signed_body or body, stamp)
    headers = {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": str(stamp),
        "Content-Type": "application/json",
    }
    return await http.post(path, content=body, headers=headers)


def test_recording_starter_is_a_webhook_starter() -> None:
    """The fake used below satisfies the WebhookStarter protocol the lead implements."""
    assert isinstance(RecordingStarter(), WebhookStarter)


def test_sign_v3_agrees_with_the_sdk_oracle() -> None:
    """hubspot-api-client's own Signature.is_valid accepts sign_v3's value and no tampering."""
    body, stamp = '[{"eventId":1}]', str(int(time.time() * 1000))
    signature = sign_v3(SECRET, "POST", URI, body, stamp)
    kw = {"http_uri": URI, "signature_version": "v3", "timestamp": stamp}
    assert Signature.is_valid(signature, SECRET, body, **kw)
    assert not Signature.is_valid(signature, SECRET, body + " ", **kw)
    assert not Signature.is_valid(signature, "other-secret", body, **kw)
    with pytest.raises(InvalidSignatureTimestampError):
        Signature.is_valid(
            signature,
            SECRET,
            body,
            http_uri=URI,
            signature_version="v3",
            timestamp=str(int(stamp) - 301_000),
        )


async def test_a_signed_creation_event_starts_the_deal(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """A valid deal.creation delivery is accepted and starts the deal's handoff."""
    response = await deliver(client, [event(7, subscriptionType="deal.creation", changeFlag="NEW")])
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert starter.calls == [("trigger", "hubspot", "1001", "7")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"propertyName": "dealstage", "propertyValue": "appointmentscheduled"},
            ("trigger", "hubspot", "1001", "1"),
        ),
        (
            {"propertyName": "dealstage", "propertyValue": "closedwon"},
            ("changed", "hubspot", "1001", {"crm_stage": "closed_won"}, "1"),
        ),
        (
            {"propertyName": "budget_confirmed", "propertyValue": "true"},
            ("evidence", "hubspot", "1001", "budget_confirmed", "1"),
        ),
        (
            {"propertyName": "budget_confirmed", "propertyValue": "false"},
            ("changed", "hubspot", "1001", {"budget_confirmed": "false"}, "1"),
        ),
        (
            {"propertyName": "amount", "propertyValue": "99000"},
            ("changed", "hubspot", "1001", {"amount": "99000"}, "1"),
        ),
    ],
)
async def test_property_changes_are_routed_by_policy_and_mapping(
    client: httpx.AsyncClient,
    starter: RecordingStarter,
    change: dict[str, str],
    expected: tuple[Any, ...],
) -> None:
    """Trigger stages start, truthy evidence fields add evidence, other mapped fields change."""
    assert (await deliver(client, [event(1, **change)])).status_code == 200
    assert starter.calls == [expected]


async def test_a_change_names_the_hubspot_user_who_made_it(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """An edit in the CRM carries ``sourceId: userId:<n>``; an integration's has none."""
    amount = {"propertyName": "amount", "propertyValue": "900"}
    by_user = event(1, **amount, sourceId="userId:4127")
    by_app = event(2, occurred_at=1_700_000_000_001, **amount, changeSource="API", sourceId="7")
    assert (await deliver(client, [by_user, by_app])).status_code == 200
    assert starter.changed_by == ["HubSpot user 4127", None]


async def test_unmapped_properties_and_other_objects_are_ignored(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """A property Handoff does not map, or a contact event, calls nothing and is counted."""
    payload = [
        event(1, propertyName="hs_analytics_source", propertyValue="x"),
        event(2, subscriptionType="contact.propertyChange", propertyName="email"),
    ]
    response = await deliver(client, payload)
    assert response.json() == {"accepted": 0, "duplicates": 0, "ignored": 2}
    assert starter.calls == []


async def test_a_mapping_override_routes_a_custom_property(starter: RecordingStarter) -> None:
    """With budget_confirmed mapped to a custom checkbox, that checkbox proves the evidence."""
    mapping = DEFAULT_MAPPING.overridden({"budget_confirmed": "acme_budget_ok"})
    transport = httpx.ASGITransport(app=app_for(starter, mapping))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        await deliver(http, [event(3, propertyName="acme_budget_ok", propertyValue="Yes")])
    assert starter.calls == [("evidence", "hubspot", "1001", "budget_confirmed", "3")]


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"signed_body": b"[]"}, "invalid_signature"),
        ({"secret": "wrong-secret"}, "invalid_signature"),
        ({"stamp": int(time.time() * 1000) - 6 * 60 * 1000}, "stale_request"),
    ],
)
async def test_bad_signatures_and_stale_requests_are_refused(
    client: httpx.AsyncClient, starter: RecordingStarter, kw: dict[str, Any], error: str
) -> None:
    """A tampered body, the wrong secret or a 6-minute-old timestamp: 401, nothing started."""
    response = await deliver(client, [event(1, subscriptionType="deal.creation")], **kw)
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert response.json()["detail"]
    assert starter.calls == []


async def test_a_missing_signature_is_refused(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """No signature headers at all: 401 with a reason."""
    response = await client.post("/webhooks/hubspot", json=[event(1)])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_timestamp"
    assert starter.calls == []


async def test_the_query_string_is_part_of_the_signed_uri(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """HubSpot signs the full URI: a request signed with its query string is accepted."""
    payload = [event(4, subscriptionType="deal.creation")]
    response = await deliver(client, payload, path="/webhooks/hubspot?portal=62515")
    assert response.status_code == 200
    assert len(starter.calls) == 1


async def test_ten_identical_deliveries_start_once(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """At-least-once delivery: the same event ten times reaches the starter once."""
    payload = [event(42, subscriptionType="deal.creation")]
    answers = [await deliver(client, payload) for _ in range(10)]
    assert {a.status_code for a in answers} == {200}
    assert starter.calls == [("trigger", "hubspot", "1001", "42")]


async def test_duplicates_inside_one_batch_are_dropped(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """A batch carrying the same eventId three times calls the starter once."""
    payload = [event(5, propertyName="amount", propertyValue="1")] * 3
    response = await deliver(client, payload)
    assert response.json() == {"accepted": 1, "duplicates": 2, "ignored": 0}
    assert len(starter.calls) == 1


async def test_out_of_order_events_are_handled_by_occurred_at(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """A batch delivered newest first is applied oldest first."""
    payload = [
        event(3, occurred_at=3_000, propertyName="amount", propertyValue="5"),
        event(2, occurred_at=2_000, propertyName="need_confirmed", propertyValue="true"),
        event(1, occurred_at=1_000, subscriptionType="deal.creation"),
    ]
    await deliver(client, payload)
    assert [c[0] for c in starter.calls] == ["trigger", "evidence", "changed"]


@pytest.mark.parametrize(
    ("raw", "error", "names"),
    [
        (b'[{"eventId": 1,', "malformed_json", ""),
        (b'{"eventId": 1}', "invalid_events", ""),
        (
            b'[{"subscriptionType": "deal.creation", "objectId": 1, "occurredAt": 1}]',
            "invalid_events",
            "eventId",
        ),
    ],
)
async def test_malformed_bodies_are_refused_with_a_reason(
    client: httpx.AsyncClient, starter: RecordingStarter, raw: bytes, error: str, names: str
) -> None:
    """Bad JSON or the wrong shape: 400 naming the problem, and no starter call."""
    response = await deliver(client, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert names in response.json()["detail"]
    assert starter.calls == []


async def test_an_oversized_body_is_refused(starter: RecordingStarter) -> None:
    """A body over max_body_bytes gets 413 before anything is parsed."""
    transport = httpx.ASGITransport(app=app_for(starter, max_body_bytes=200))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        payload = [event(i, subscriptionType="deal.creation") for i in range(10)]
        response = await deliver(http, payload)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert starter.calls == []


async def test_a_failing_starter_answers_503_and_the_redelivery_is_processed(
    client: httpx.AsyncClient, starter: RecordingStarter
) -> None:
    """If the workflow side fails, HubSpot is told to retry, and the retry is not a duplicate."""
    payload = [event(9, subscriptionType="deal.creation")]
    starter.fail = True
    assert (await deliver(client, payload)).status_code == 503
    starter.fail = False
    assert (await deliver(client, payload)).status_code == 200
    assert starter.calls == [("trigger", "hubspot", "1001", "9")]
