"""Helpers for the HubSpot tests: a sandbox on a free port, its control endpoints, raw
API calls with the sandbox token, connectors that record their backoff sleeps, the
connector test modules' fixtures (`connector_fixtures`), and (for integration tests)
Handoff's processes using a sandbox as their portal, with signed webhooks to their API.

Test modules import these and wrap them in their own pytest fixtures; the connector
modules bind the ready-made ones of `connector_fixtures`.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import pytest

from connectors.hubspot import HubSpotConnector
from sandbox.common import FaultSettings, free_port, serve_in_thread
from sandbox.hubspot import create_app

if TYPE_CHECKING:
    from temporalio.testing import WorkflowEnvironment

    from support.processes import Stack

TOKEN = "handoff-sandbox"
#: Routes as the sandbox's request counter (`HubSpotSandbox.stats`) names them.
GET = "GET /crm/v3/objects/{ot}/{oid}"
PATCH = "PATCH /crm/v3/objects/{ot}/{oid}"
CREATE = "POST /crm/v3/objects/{ot}/batch/create"
READ = "POST /crm/v3/objects/{ot}/batch/read"
UPDATE = "POST /crm/v3/objects/{ot}/batch/update"
OWNERS = "GET /crm/v3/owners/"


@dataclass
class HubSpotSandbox:
    """A running sandbox: its base URL, an HTTP client, and the connectors made for it."""

    base: str
    http: httpx.Client
    sleeps: list[float] = field(default_factory=list)
    connectors: list[HubSpotConnector] = field(default_factory=list)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.base}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def faults(self, **settings: Any) -> None:
        self.control("POST", "faults", FaultSettings(**settings).model_dump())

    def limits(self, **limits: Any) -> None:
        self.control("POST", "limits", limits)

    def lose_responses(self, count: int) -> None:
        self.control("POST", "lost-responses", {"count": count})

    def activity(self, deal_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", f"deals/{deal_id}/activity")
        return result

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.control("GET", "stats")
        return result

    def api(
        self, method: str, path: str, *, token: str | None = TOKEN, **kw: Any
    ) -> httpx.Response:
        """A raw API call (for wire-level checks), with the sandbox token unless told."""
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kw)

    def connector(self, **kw: Any) -> HubSpotConnector:
        """A connector to this sandbox that records (and skips) its backoff sleeps."""
        kw.setdefault("sleep", self.sleeps.append)
        kw.setdefault("access_token", TOKEN)
        connector = HubSpotConnector(host=self.base, **kw)
        self.connectors.append(connector)
        return connector


def store_with_unique_ids(path: Path) -> Path:
    """A seeded sandbox store whose new record ids start at a random point, so workflow
    ids (`lead-to-cash-hubspot-<id>`) never collide between tests on a shared server."""
    from sandbox.hubspot_store import Store

    Store(path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('next_id', ?)",
            (str(10**6 + uuid.uuid4().int % 10**9),),
        )
    return path


@contextmanager
def running_sandbox(store_path: Path | None = None, **app_kw: Any) -> Iterator[HubSpotSandbox]:
    """Serve a fresh (seeded) sandbox on a free loopback port."""
    app = create_app(store_path, token=TOKEN, **app_kw)
    with serve_in_thread(app, port=free_port()) as base, httpx.Client(timeout=10) as http:
        sandbox = HubSpotSandbox(base=base, http=http)
        try:
            yield sandbox
        finally:
            for connector in sandbox.connectors:
                connector.close()
            app.state.sandbox.webhooks.close()


def connector_fixtures() -> tuple[Any, Any]:
    """The fixtures of a connector test module, bound at its top as
    `sandbox, hs = connector_fixtures()`: `sandbox`, a fresh sandbox for each test, and
    `hs`, a connector to it (`HubSpotSandbox.connector`).

    A factory, not a conftest: the Salesforce modules beside them have a fixture of
    their own named `sandbox`."""

    @pytest.fixture(name="sandbox")
    def sandbox_fixture() -> Iterator[HubSpotSandbox]:
        with running_sandbox() as sandbox:
            yield sandbox

    @pytest.fixture(name="hs")
    def hs_fixture(sandbox: HubSpotSandbox) -> HubSpotConnector:
        return sandbox.connector()

    return sandbox_fixture, hs_fixture


def assert_hubspot_error(
    response: httpx.Response, status: int, category: str | None = None
) -> None:
    """The response is HubSpot's error body (status, message, correlationId, category)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), body
    assert "detail" not in body
    assert body["status"] == "error"
    assert isinstance(body["message"], str)
    assert body["message"]
    assert len(body["correlationId"]) == 36
    assert isinstance(body["category"], str)
    if category is not None:
        assert body["category"] == category, body


def stack_env(
    sandbox: HubSpotSandbox, api_port: int, app_secret: str | None = None
) -> dict[str, str]:
    """The environment a `handoff` process needs to use this sandbox as its portal, with
    its API on `api_port` taking webhooks signed with `app_secret` (if given)."""
    env = {
        "HANDOFF_HUBSPOT_HOST": sandbox.base,
        "HANDOFF_HUBSPOT_TOKEN": TOKEN,
        "HANDOFF_API_PORT": str(api_port),
        "HANDOFF_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
    }
    return env | ({"HANDOFF_HUBSPOT_APP_SECRET": app_secret} if app_secret else {})


def run_with_webhooks(s: Stack, sandbox: HubSpotSandbox, api_port: int, app_secret: str) -> None:
    """Start the stack's worker and API, and subscribe the API to the sandbox's signed
    webhooks (delivered in batches after 50 ms), as a HubSpot app would be."""
    s.worker()
    s.spawn("api", ready="Application startup complete")
    target = f"http://127.0.0.1:{api_port}/webhooks/hubspot"
    sandbox.control(
        "POST",
        "webhooks/subscribe",
        {"target_url": target, "client_secret": app_secret, "linger_ms": 50},
    )


class HubSpotStack(NamedTuple):
    """A sandbox, the Handoff processes using it as their portal, and their API's URL."""

    sandbox: HubSpotSandbox
    s: Stack
    api: str


@contextmanager
def hubspot_stack(
    dev_env: WorkflowEnvironment,
    state_dir: Path,
    *,
    app_secret: str | None = None,
    webhooks: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[HubSpotStack]:
    """A fresh sandbox (its record ids unique to the test) and a `Stack` in `state_dir`
    on the dev server, whose processes use it as their portal (`stack_env`: the API on a
    free port). With `webhooks` (and `app_secret`), the worker and the API run and the
    sandbox delivers its signed webhooks to the API (`run_with_webhooks`)."""
    from support.processes import stack

    address = dev_env.client.service_client.config.target_host
    port = free_port()
    with (
        running_sandbox(store_with_unique_ids(state_dir / "hubspot.sqlite3")) as sandbox,
        stack(
            address,
            state_dir,
            extra_env=stack_env(sandbox, port, app_secret) | (extra_env or {}),
        ) as s,
    ):
        if webhooks:
            assert app_secret, "signed webhooks need the app's secret"
            run_with_webhooks(s, sandbox, port, app_secret)
        yield HubSpotStack(sandbox, s, f"http://127.0.0.1:{port}")


def create_deal(
    sandbox: HubSpotSandbox,
    name: str,
    *,
    amount: str,
    discount_percent: str,
    owner: str,
    **properties: str,
) -> str:
    """A deal at the pipeline's first stage, owned by `owner` (an email), created over the
    raw API (201) with any further `properties`; its id."""
    given = {
        "dealname": name,
        "amount": amount,
        "discount_percent": discount_percent,
        "dealstage": "appointmentscheduled",
        "handoff_owner_email": owner,
        **properties,
    }
    created = sandbox.api("POST", "/crm/v3/objects/deals", json={"properties": given})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def post_webhook(api: str, app_secret: str, events: list[dict[str, Any]]) -> httpx.Response:
    """One delivery of `events` to the API's HubSpot webhook, signed (v3) as HubSpot
    signs it with the app's secret."""
    from worker.http.ingress.hubspot import sign_v3

    body = json.dumps(events)
    stamp = str(int(time.time() * 1000))
    uri = f"{api}/webhooks/hubspot"
    headers = {
        "X-HubSpot-Signature-v3": sign_v3(app_secret, "POST", uri, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return httpx.post(uri, content=body, headers=headers, timeout=10)
