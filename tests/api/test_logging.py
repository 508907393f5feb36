"""Logging: JSON lines with deal context, and never a secret, token or signed link."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from support.api import LINK_SECRET, TOKENS, bearer, deal_at_tier, deal_path, links_sent_to, path_of
from support.handoffs import MANAGER, until
from temporalio.testing import WorkflowEnvironment

from worker.logging import configure_logging, deal_context, register_secrets
from worker.settings import Settings


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Configure production logging into a buffer; restore pytest's logging afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    named = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
        for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio")
    }
    buffer = io.StringIO()
    configure_logging("production", stream=buffer)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for n, (handlers, propagate) in named.items():
            logging.getLogger(n).handlers[:] = handlers
            logging.getLogger(n).propagate = propagate


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_secret_keys_and_secret_shaped_values_are_masked(captured: io.StringIO) -> None:
    """Tokens, passwords, bearer headers, signed links and registered secrets never print."""
    register_secrets("registered-secret-value-42")
    log = structlog.get_logger("handoff.test")
    log.info(
        "login",
        token="tok-plain-1",
        authorization="Bearer abc.def",
        password="hunter2",
        api_key="k-123",
        headers={"Cookie": "s=1", "Accept": "json"},
        url="https://h/links/hl1.eyJhIjoxfQ.c2lnbmF0dXJl",
        deal_id="D-1",
    )
    log.info("said Bearer zzz-token-9 and registered-secret-value-42 out loud")
    text = captured.getvalue()
    for secret in (
        "tok-plain-1",
        "abc.def",
        "hunter2",
        "k-123",
        "s=1",
        "eyJhIjoxfQ",
        "c2lnbmF0dXJl",
        "zzz-token-9",
        "registered-secret-value-42",
    ):
        assert secret not in text, secret
    first, second = lines(captured)
    assert first["token"] == first["password"] == first["api_key"] == "[redacted]"
    assert first["headers"] == {"Cookie": "[redacted]", "Accept": "json"}
    assert first["url"] == "https://h/links/hl1.[redacted]"
    assert first["deal_id"] == "D-1"
    assert first["level"] == "info"
    assert second["event"] == "said Bearer [redacted] and [redacted] out loud"


def test_deal_context_and_temporal_records_carry_deal_ids(captured: io.StringIO) -> None:
    """Bound context is on every line; temporalio's records get crm and deal_id from the id."""
    with deal_context(
        crm="memory",
        deal_id="D-9",
        workflow_id="lead-to-cash-memory-D-9",
        stage="deal_desk",
        approver=MANAGER,
    ):
        structlog.get_logger("handoff.api").info("action accepted")
    logging.getLogger("temporalio.workflow").info(
        "refused approve",
        extra={
            "temporal_workflow": {
                "workflow_id": "lead-to-cash-hubspot-4711-approval-r2",
                "workflow_type": "X",
            }
        },
    )
    structlog.get_logger("handoff.api").info("after the block")
    bound, temporal, after = lines(captured)
    assert {k: bound[k] for k in ("crm", "deal_id", "workflow_id", "stage", "approver")} == {
        "crm": "memory",
        "deal_id": "D-9",
        "workflow_id": "lead-to-cash-memory-D-9",
        "stage": "deal_desk",
        "approver": MANAGER,
    }
    assert (temporal["crm"], temporal["deal_id"]) == ("hubspot", "4711")
    assert temporal["logger"] == "temporalio.workflow"
    assert "deal_id" not in after


def test_development_output_is_pretty_and_still_masked() -> None:
    """The console renderer is not JSON, and secrets are masked there too."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("development", stream=buffer)
        structlog.get_logger("t").info("hello", token="tok-dev-77", deal_id="D-3")
    finally:
        structlog.reset_defaults()
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    text = buffer.getvalue()
    assert "hello" in text
    assert "deal_id=D-3" in text
    assert "tok-dev-77" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fail(record_id: str) -> None:
    held = {"record_id": record_id, "local-marker": "held-in-a-local-77"}
    raise RuntimeError(f"CRM refused {held['record_id']}")


@pytest.mark.parametrize("stream", [io.StringIO, _Terminal], ids=["file", "terminal"])
def test_development_tracebacks_show_no_locals(stream: type[io.StringIO]) -> None:
    """A failure logged in development shows its traceback, not the frames' locals: they
    cost a CRM-failing worker its event loop, and hold what no secret pattern knows."""
    buffer = stream()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("development", stream=buffer)
        try:
            _fail("deal-41")
        except RuntimeError:
            logging.getLogger("t").warning("Completing activity as failed", exc_info=True)
    finally:
        structlog.reset_defaults()
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    text = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())  # a terminal's colours
    assert "Completing activity as failed" in text
    assert "Traceback" in text and "_fail" in text and "CRM refused deal-41" in text
    assert "held-in-a-local-77" not in text


async def test_api_scenario_logs_ids_but_no_tokens_or_links(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    settings: Settings,
    http: httpx.AsyncClient,
    captured: io.StringIO,
) -> None:
    """Approving by token and opening a link logs deal and workflow ids, never credentials."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = links_sent_to(notifier, MANAGER)["approve"]
        assert (await http.get(path_of(link))).status_code == 200
        r = await http.post(
            deal_path(handle, "approve"), headers=bearer(MANAGER), json={"reason": "Good logo"}
        )
        assert r.status_code == 200
        await until(
            handle, lambda s: s.pending_approval is not None and s.pending_approval.tier == "vp"
        )
        assert (await http.get(path_of(link))).status_code == 409  # no longer pending
        await http.post(
            deal_path(handle, "approve"),
            headers={"Authorization": "Bearer leak-me"},
            json={"reason": "x"},
        )
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET %s HTTP/1.1" 200', path_of(link))
    text = captured.getvalue()
    token = path_of(link).removeprefix("/links/")
    for secret in (*TOKENS.values(), LINK_SECRET, token, token.split(".")[2], "leak-me"):
        assert secret not in text, secret
    accepted = [e for e in lines(captured) if e["event"] == "action accepted"]
    assert len(accepted) == 1
    assert accepted[0]["workflow_id"] == handle.id
    assert accepted[0]["deal_id"] == handle.id.split("-", 4)[-1]
    assert accepted[0]["approver"] == MANAGER
    refused = [e for e in lines(captured) if e["event"] == "link refused"]
    assert refused
    assert refused[0]["why"] == "superseded"
    assert refused[0]["deal_id"] == accepted[0]["deal_id"]
