"""Helpers for the API tests: settings with known tokens, an app client, deals at a tier."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from support.handoffs import (
    MANAGER,
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    RecordingNotifier,
    give_evidence,
    make_deal,
    start,
    terminate_started,
    track,
    until,
)
from temporalio.client import Client, WorkflowHandle

from connectors.memory import MemoryConnector
from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.http.links import SignedLinks
from worker.processes.api import create_app
from worker.processes.worker import build_worker
from worker.settings import Settings
from workflows.messages import DealStatus
from workflows.names import RENEWAL, Msg
from workflows.policy import default_policy

TOKENS = {
    OWNER: "tok-owner-5b1f0c9e",
    MANAGER: "tok-manager-8d2a7e44",
    VP: "tok-vp-3c9e1b77",
    OPS: "tok-ops-1a4f6d20",
}
LINK_SECRET = "link-secret-for-tests-0123456789abcdef"
BASE = "http://testserver"


def make_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: never read from the environment or a `.env` file."""
    values: dict[str, Any] = {
        "api_tokens": {email: SecretStr(tok) for email, tok in TOKENS.items()},
        "link_secret": SecretStr(LINK_SECRET),
        "state_dir": state_dir,
        "public_url": BASE,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def bearer(email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[email]}"}


@asynccontextmanager
async def api_client(settings: Settings, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process over ASGI (the app is on `http.app`... via `.app_of`)."""
    app = create_app(settings, client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


@asynccontextmanager
async def deal_at_tier(
    client: Client,
    task_queue: str,
    settings: Settings,
    discount: float = 30,
    deal_id: str | None = None,
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], MemoryConnector, RecordingNotifier]]:
    """A memory-CRM deal whose discount waits on the sales manager, with signed links on."""
    deal = make_deal(deal_id or f"D-{uuid.uuid4().hex[:8]}", discount=discount)
    crm = MemoryConnector([deal])
    notifier = RecordingNotifier()
    links = SignedLinks.from_settings(settings)
    async with build_worker(
        client, task_queue=task_queue, connector=crm, notifier=notifier, links=links
    ):
        try:
            handle = await start(client, task_queue, deal.id)
            await give_evidence(handle, *QUALIFY_EVIDENCE)
            await until(handle, lambda s: s.pending_approval is not None)
            await asked(notifier, links is not None)
            yield handle, crm, notifier
        finally:
            await terminate_started(client, task_queue)


async def asked(notifier: RecordingNotifier, with_links: bool, timeout: float = 10) -> None:
    """Wait for the approval notice: its activity runs just after the status shows the
    pending tier, so a test reading the notice at once could miss it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(n.links or not with_links for n in notifier.notices if "Approve " in n.subject):
        assert asyncio.get_running_loop().time() < deadline, "no approval notice was sent"
        await asyncio.sleep(0.05)


#: The account manager who confirms a renewal's usage (the default policy's `account_manager`).
AM = "amy.am@example.com"


@asynccontextmanager
async def renewal_at_tier(
    client: Client, task_queue: str, settings: Settings, discount: float = 30
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], MemoryConnector, RecordingNotifier]]:
    """A memory-CRM renewal, started through the client path, whose new discount waits on
    the sales manager (its contract ends within the window, so usage is asked at once)."""
    deal = make_deal(f"R-{uuid.uuid4().hex[:8]}", discount=0)
    deal.fields["contract_end_date"] = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    crm = MemoryConnector([deal])
    notifier = RecordingNotifier()
    links = SignedLinks.from_settings(settings)
    async with build_worker(
        client, task_queue=task_queue, connector=crm, notifier=notifier, links=links
    ):
        try:
            ref = HandoffRef.of(RENEWAL, "memory", deal.id)
            handle, started = await handoffs.start(
                client, ref, policy=default_policy(), task_queue=task_queue
            )
            assert started
            track(task_queue, handle.id)
            await until(handle, lambda s: s.stage == "usage")
            await handoffs.update(
                client, ref, Msg.UPDATE_TERMS, {"by": OWNER, "discount_percent": discount}
            )
            await give_evidence(handle, "usage_confirmed", by=AM)
            await until(handle, lambda s: s.pending_approval is not None)
            await asked(notifier, links is not None)
            yield handle, crm, notifier
        finally:
            await terminate_started(client, task_queue)


def typed_path(handle: WorkflowHandle[Any, Any], action: str = "") -> str:
    """`/api/handoffs/<type>/<crm>/<deal>/<action>` of a handoff, from its workflow id."""
    ref = HandoffRef.from_workflow_id(handle.id)
    base = f"/api/handoffs/{ref.type.name}/{ref.crm}/{ref.deal_id}"
    return base + (f"/{action}" if action else "")


def deal_path(handle: WorkflowHandle[Any, Any], action: str = "") -> str:
    deal_id = handle.id.split("-", 4)[-1]
    return f"/api/deals/memory/{deal_id}" + (f"/{action}" if action else "")


def links_sent_to(notifier: RecordingNotifier, person: str) -> dict[str, str]:
    """The newest approve/reject links a person was sent."""
    found = [n.links for n in notifier.notices if person in n.to and n.links]
    assert found, f"no links were sent to {person}"
    return found[-1]


def path_of(url: str) -> str:
    assert url.startswith(BASE), url
    return url[len(BASE) :]


def same_state(a: DealStatus, b: DealStatus) -> bool:
    """Nothing changed between two statuses (history, decisions, what is pending) but the
    refusals the audit trail records."""
    keys = {
        "history",
        "approvals",
        "pending_approval",
        "approval_round",
        "stage",
        "waiting_on",
        "owner",
        "terms",
    }

    def kept(st: DealStatus) -> dict[str, Any]:
        dumped = st.model_dump(include=keys)
        dumped["history"] = [h for h in dumped["history"] if h["kind"] != "refused"]
        return dumped

    return kept(a) == kept(b)
