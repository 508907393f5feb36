"""The stall board: grouping, ordering and SLA states, from statuses and from live handoffs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from support.api import TOKENS, bearer
from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    give_evidence,
    handoff_worker,
    make_deal,
    polls,
    start,
    until,
)
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from worker.client.board import StallBoard, build_board, render_text, sla_level, stall_board
from worker.http.auth import SESSION_COOKIE
from workflows.kit.clock import ClockState
from workflows.messages import DealStatus
from workflows.names import WaitingOn
from workflows.records import ExceptionRecord

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def deal(
    deal_id: str,
    on: WaitingOn,
    since_h: float,
    due_h: float | None,
    sla: str = "ok",
    **extra: object,
) -> DealStatus:
    return DealStatus(
        workflow_id=f"lead-to-cash-memory-{deal_id}",
        crm="memory",
        deal_id=deal_id,
        deal_name=f"Deal {deal_id}",
        stage="qualify",
        waiting_on=on,
        waiting_for=f"{on.value} things",
        since=NOW - timedelta(hours=since_h),
        due_at=NOW + timedelta(hours=due_h) if due_h is not None else None,
        sla_state=sla,
        policy_version="test",
        **{"owner": [OWNER], **extra},  # type: ignore[arg-type]
    )


def test_sla_level_rejudges_the_workflows_state_at_now() -> None:
    """Past due is breached; due soon, paused and escalated are as the workflow reported."""
    assert sla_level("ok", NOW + timedelta(hours=5), NOW) == "ok"
    assert sla_level("due_soon", NOW + timedelta(hours=5), NOW) == "due_soon"
    assert sla_level("due_soon", NOW - timedelta(hours=1), NOW) == "breached"
    assert sla_level("ok", NOW - timedelta(seconds=1), NOW) == "breached"
    assert sla_level("paused", NOW - timedelta(days=1), NOW) == "paused"
    assert sla_level("escalated", NOW + timedelta(days=1), NOW) == "escalated"
    assert sla_level("none", None, NOW) == "ok"


def test_board_groups_by_waiting_on_oldest_first_and_counts_states() -> None:
    """Items group by what they wait on, oldest first; done and idle handoffs are left out."""
    board = build_board(
        [
            deal("A", WaitingOn.EVIDENCE, since_h=2, due_h=48),
            deal("B", WaitingOn.DISCOUNT_APPROVAL, since_h=30, due_h=-6),
            deal("C", WaitingOn.EVIDENCE, since_h=50, due_h=3, sla="due_soon"),
            deal("D", WaitingOn.NOTHING, since_h=1, due_h=None),
            deal("E", WaitingOn.EVIDENCE, since_h=90, due_h=None, done=True),
        ],
        NOW,
    )
    assert [(g.waiting_on, [i.deal_id for i in g.items]) for g in board.groups] == [
        ("evidence", ["C", "A"]),
        ("discount_approval", ["B"]),
    ]
    assert board.total == 3
    assert board.counts == {"breached": 1, "escalated": 0, "due_soon": 1, "paused": 0, "ok": 1}
    assert board.groups[0].items[0].age_seconds == 50 * 3600


def test_open_exceptions_show_who_owes_their_resolution() -> None:
    """An open exception adds its owners and its own SLA to the deal's line."""
    exc = ExceptionRecord(
        kind="credit_hold",
        raised_by=OWNER,
        note="over limit",
        raised_at=NOW,
        stage="close",
        owner=["bill@example.com"],
        due_at=NOW + timedelta(days=5),
        clock=ClockState.start("exception:credit_hold", sla=timedelta(days=5), now=NOW),
    )
    st = deal("X", WaitingOn.EXCEPTION, since_h=3, due_h=10, sla="paused", exceptions=[exc])
    item = build_board([st], NOW).groups[0].items[0]
    assert item.sla == "paused"
    assert [(o.who, o.what, o.sla) for o in item.owes] == [
        ([OWNER], "exception things", "paused"),
        (["bill@example.com"], "resolve credit_hold: over limit", "ok"),
    ]


def test_render_text_names_owners_ages_and_deadlines() -> None:
    """The CLI text has the summary, each group, each deal, and who owes what by when."""
    text = render_text(
        build_board(
            [
                deal("B", WaitingOn.DISCOUNT_APPROVAL, since_h=30, due_h=-6, owner=[MANAGER]),
            ],
            NOW,
        )
    )
    lines = text.splitlines()
    assert lines[0] == "Stall board at 2026-03-02 12:00 UTC: 1 open handoff (1 breached)"
    assert "WAITING ON DISCOUNT_APPROVAL (1)" in lines
    assert any(
        line.strip().startswith("BREACHED") and "memory/B" in line and "1d 6h" in line
        for line in lines
    )
    assert any(
        f"{MANAGER} owes discount_approval things, due 2026-03-02 06:00 UTC" in line
        for line in lines
    )
    assert render_text(build_board([], NOW)).endswith("Nothing is stuck.")


async def test_live_board_lists_running_handoffs_and_serves_json_and_html(
    dev_env: WorkflowEnvironment, task_queue: str, http: httpx.AsyncClient
) -> None:
    """Two live deals appear under evidence and discount approval; a month on, both breach."""
    ev, ap = f"D-ev-{uuid.uuid4().hex[:6]}", f"D-ap-{uuid.uuid4().hex[:6]}"
    crm = MemoryConnector([make_deal(ev, discount=0), make_deal(ap, discount=20)])
    async with handoff_worker(dev_env.client, task_queue, crm):
        h_ev = await start(dev_env.client, task_queue, ev)
        h_ap = await start(dev_env.client, task_queue, ap)
        await give_evidence(h_ap, *QUALIFY_EVIDENCE)
        await until(h_ap, lambda s: s.pending_approval is not None)
        await until(h_ev, lambda s: s.waiting_on == WaitingOn.EVIDENCE)

        def mine(board: StallBoard) -> dict[str, list[str]]:
            return {
                g.waiting_on: [i.deal_id for i in g.items if i.deal_id in (ev, ap)]
                for g in board.groups
            }

        async for _ in polls():  # visibility is eventually consistent
            board = await stall_board(dev_env.client)
            if mine(board).get("evidence") == [ev] and mine(board).get("discount_approval") == [ap]:
                break
            await asyncio.sleep(0.2)
        assert mine(board)["evidence"] == [ev]
        assert mine(board)["discount_approval"] == [ap]
        item = next(i for g in board.groups for i in g.items if i.deal_id == ap)
        assert item.owes[0].who == [MANAGER]
        assert item.sla == "ok"

        later = await stall_board(dev_env.client, now=datetime.now(UTC) + timedelta(days=30))
        assert {
            i.deal_id: i.sla for g in later.groups for i in g.items if i.deal_id in (ev, ap)
        } == {ev: "breached", ap: "breached"}

        r = await http.get("/api/stuck", headers=bearer(OWNER))
        assert r.status_code == 200
        assert any(i["deal_id"] == ap for g in r.json()["groups"] for i in g["items"])
        assert (await http.get("/api/stuck")).status_code == 401
        http.cookies.set(SESSION_COOKIE, TOKENS[OWNER])
        page = await http.get("/stuck")
        http.cookies.clear()
        assert page.status_code == 200
        assert f"Deal {ap}" in page.text
        assert MANAGER in page.text
