"""Live policy: long-running processes read the policy file as it is now, so an edit
takes effect for the next handoff without a restart; a broken edit keeps the last good."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import yaml
from fastapi import FastAPI
from ingress.test_hubspot_webhook import BASE, SECRET, RecordingStarter, event
from pydantic import SecretStr

from connectors.hubspot import DEFAULT_MAPPING
from worker.http.ingress.hubspot import build_router, sign_v3
from worker.policy import PolicySource
from workflows.policy import DEFAULT_POLICY_PATH


def write_policy(path: Path, **changes: object) -> None:
    """The default policy with top-level keys replaced, saved with a fresh mtime."""
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data.update(changes)
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    if path.stat().st_mtime_ns == before:  # a coarse file-system clock: move it on
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_an_edited_file_is_the_next_policy(tmp_path: Path) -> None:
    """After the file is edited, `current()` is the new version; unchanged, the same."""
    path = tmp_path / "policy.yaml"
    write_policy(path)
    source = PolicySource(path)
    first = source.current()
    assert source.current() is first
    write_policy(path, people={**first.people, "sales_manager": ["nina.new@example.com"]})
    edited = source.current()
    assert edited.version != first.version
    assert edited.people["sales_manager"] == ["nina.new@example.com"]


def test_an_edit_that_does_not_validate_keeps_the_last_good_policy(tmp_path: Path) -> None:
    """A typo saved mid-edit never stops starts: the last good version stays in force,
    and the next valid save is picked up."""
    path = tmp_path / "policy.yaml"
    write_policy(path)
    source = PolicySource(path)
    good = source.current().version
    write_policy(path, trigger_crm_stages="not-a-list")
    assert source.current().version == good
    write_policy(path, trigger_crm_stages=["qualified"])
    assert source.current().trigger_crm_stages == ["qualified"]
    assert source.current().version != good


def test_without_a_file_the_source_is_the_default_policy() -> None:
    """No HANDOFF_POLICY: the shipped default, read once."""
    source = PolicySource(None)
    assert source.current() is source.current()
    assert source.current().trigger_crm_stages == ["new"]


async def test_the_webhook_ingress_follows_trigger_stages_as_the_file_changes(
    tmp_path: Path,
) -> None:
    """A deal moving to 'qualified' only changes a handoff; once the file makes
    'qualified' a trigger stage, the same event starts one, with no new router."""
    path = tmp_path / "policy.yaml"
    write_policy(path)
    source = PolicySource(path)
    starter = RecordingStarter()
    app = FastAPI()
    app.include_router(
        build_router(
            client_secret=SecretStr(SECRET),
            starter=starter,
            policy=source.current,
            mapping=DEFAULT_MAPPING,
        )
    )

    async def deliver(http: httpx.AsyncClient, event_id: int) -> None:
        body = json.dumps(
            [event(event_id, propertyName="dealstage", propertyValue="qualifiedtobuy")]
        )
        stamp = int(time.time() * 1000)
        headers = {
            "X-HubSpot-Signature-v3": sign_v3(
                SECRET, "POST", f"{BASE}/webhooks/hubspot", body, stamp
            ),
            "X-HubSpot-Request-Timestamp": str(stamp),
            "Content-Type": "application/json",
        }
        response = await http.post("/webhooks/hubspot", content=body, headers=headers)
        assert response.status_code == 200, response.text

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        await deliver(http, 1)
        write_policy(path, trigger_crm_stages=["new", "qualified"])
        await deliver(http, 2)
    assert starter.calls == [
        ("changed", "hubspot", "1001", {"crm_stage": "qualified"}, "1"),
        ("trigger", "hubspot", "1001", "2"),
    ]
