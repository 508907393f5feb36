"""The deal desk sees the quote: lines from the CRM, real margin from costs, approval
rules over the quote with smart re-approval, and the deal-desk conversation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.handoffs import (
    CFO,
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    RecordingNotifier,
    eventually,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    signal,
    skip,
    start,
    track,
    until,
)
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from connectors.lines import QuoteLine
from connectors.memory import MemoryConnector
from workflows import names
from workflows.messages import DealStatus, Receipt
from workflows.names import Msg, Refusal, Stage, WaitingOn
from workflows.policy import Policy, default_policy
from workflows.renewal import RenewalExpansion, RenewalInput, RenewalStage

WAIT = 60.0  # real seconds: generous on a loaded machine

Handle = WorkflowHandle[Any, DealStatus]


def line(name: str, qty: float, price: float, off: float, cost: float | None) -> QuoteLine:
    return QuoteLine(
        id=name, name=name, quantity=qty, unit_price=price, discount_percent=off, unit_cost=cost
    )


#: 100 seats at 1,000 (cost 500) and one install at 5,000, 45% off (cost 1,000):
#: list 105,000, net 102,750 (2.14% total discount: the automatic tier), margin 50.4%.
DEEP_LINE = [line("Seats", 100, 1000, 0, 500), line("Install", 1, 5000, 45, 1000)]


@asynccontextmanager
async def quote_deal(
    env: WorkflowEnvironment,
    task_queue: str,
    lines: list[QuoteLine],
    policy: Policy | None = None,
    **fields: str,
) -> AsyncIterator[tuple[Handle, RecordingNotifier, MemoryConnector]]:
    """A qualified deal whose quote is `lines` (the deal's own discount is 0)."""
    deal = make_deal(f"Q-{uuid.uuid4().hex[:8]}", discount=0, **fields)
    crm = MemoryConnector([deal])
    crm.set_line_items(deal.id, lines)
    async with handoff_worker(env.client, task_queue, crm) as notifier:
        handle = await start(env.client, task_queue, deal.id, policy)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        yield handle, notifier, crm


async def update(handle: Handle, name: str, **payload: Any) -> Receipt:
    return await handle.execute_update(name, payload, result_type=Receipt)


async def refused(handle: Handle, name: str, **payload: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await update(handle, name, **payload)
    details = getattr(err.value.cause, "details", ())
    return str(details[0]) if details else ""


def notes_of(crm: MemoryConnector, deal_id: str) -> list[str]:
    return [str(r.data.get("body", "")) for r in crm.records(deal_id, "note")]


def asked(st: DealStatus) -> str | None:
    return st.pending_approval.tier if st.pending_approval else None


async def crm_edit(handle: Handle, crm: MemoryConnector, lines: list[QuoteLine]) -> None:
    """A rep edits the quote in the CRM; the change reaches the handoff as `deal_changed`."""
    deal_id = handle.id.split("-", 4)[-1]
    crm.set_line_items(deal_id, lines)
    await signal(
        handle,
        Msg.DEAL_CHANGED,
        fields={"amount": str(sum(x.net for x in lines))},
        event_id=uuid.uuid4().hex,
        occurred_at=datetime.now(UTC).isoformat(),
        changed_by=OWNER,
    )


async def test_lines_are_read_and_the_margin_comes_from_their_costs(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """At open the handoff reads the lines; amount, discount and margin follow them."""
    async with quote_deal(time_env, task_queue, DEEP_LINE) as (handle, _, _):
        st = await until(handle, lambda s: len(s.terms.lines) == 2, WAIT)
        assert st.terms.amount == 105_000
        assert st.terms.discount_percent == pytest.approx(2.14)
        assert st.margin_source == "lines"
        assert st.margin_percent == pytest.approx(50.4)
        assert [x.margin_percent for x in st.terms.lines] == [50.0, pytest.approx(63.6)]


async def test_without_costs_the_margin_is_the_labelled_ratio_and_no_floor_fires(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No cost anywhere: the margin is the flat ratio, labelled; the floor does not guess."""
    async with quote_deal(time_env, task_queue, [line("Seats", 10, 1000, 30, None)]) as (h, _, _):
        st = await until(h, lambda s: s.pending_approval is not None, WAIT)
        assert st.margin_source == "ratio"
        assert st.margin_percent == pytest.approx(14.3)  # below the 20% floor, but a guess
        assert asked(st) == "sales_manager"  # the discount tier, not margin_floor


async def test_a_line_above_40_percent_asks_the_cfo_and_the_margin_is_written_back(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The default policy: one line 45% off (2% in total) asks the CFO, nobody else."""
    async with quote_deal(time_env, task_queue, DEEP_LINE) as (handle, notifier, crm):
        st = await until(handle, lambda s: s.pending_approval is not None, WAIT)
        assert asked(st) == "line_discount" and st.owner == [CFO]
        assert st.pending_approval is not None and st.pending_approval.value == 45
        await eventually(  # the notice is an activity that may land after the status
            lambda: any("approval requested" in s for s in notifier.subjects_for(CFO)),
            "the CFO's approval notice",
        )
        receipt = await update(handle, Msg.APPROVE, approver=CFO, reason="Install is a one-off")
        assert receipt.pending_approval is None
        st = await until(handle, lambda s: s.stage == Stage.CLOSE, WAIT)
        await eventually(
            lambda: crm.get_deal(st.deal_id).fields.get("real_margin") == "50.4",
            "the real margin written back",
        )
        notes = notes_of(crm, st.deal_id)
        assert any("Install: 1 x 5,000.00 USD, 45% off" in n for n in notes)
        assert any("real margin 50.4% (from line costs)" in n for n in notes)


async def test_a_margin_below_the_floor_asks_the_vp_whatever_the_discount(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No discount at all, but a 15% margin from the CRM's costs: the VP is asked."""
    async with quote_deal(time_env, task_queue, [line("Hardware", 10, 1000, 0, 850)]) as (h, _, _):
        st = await until(h, lambda s: s.pending_approval is not None, WAIT)
        assert asked(st) == "margin_floor" and st.owner == [VP]
        assert st.terms.discount_percent == 0 and st.margin_percent == 15


RULE_CASES = [
    # metric, threshold, lines, deal fields
    ("discount_percent", {"above": 5}, [line("A", 10, 1000, 8, 100)], {}),
    (
        "max_line_discount_percent",
        {"above": 20},
        [line("A", 9, 1000, 0, 1), line("B", 1, 1000, 25, 1)],
        {},
    ),
    ("margin_percent", {"below": 60}, [line("A", 1, 1000, 0, 500)], {}),
    ("amount", {"above": 50_000}, [line("A", 100, 1000, 0, 100)], {}),
    ("payment_terms_days", {"above": 45}, [], {"payment_terms_days": "60"}),
    ("contract_months", {"above": 24}, [], {"contract_months": "36"}),
    ("non_standard_terms", {"above": 0}, [], {"non_standard_terms": "true"}),
]


@pytest.mark.parametrize(("metric", "threshold", "lines", "fields"), RULE_CASES)
async def test_each_rule_type_asks_its_approver_chain(
    time_env: WorkflowEnvironment,
    task_queue: str,
    metric: str,
    threshold: dict[str, float],
    lines: list[QuoteLine],
    fields: dict[str, str],
) -> None:
    """A rule on each metric fires on the quote and asks its own approvers."""
    rule = {"name": "probe", "metric": metric, "approvers": ["sales_ops"], **threshold}
    policy = policy_with(quote_rules=[rule])
    async with quote_deal(time_env, task_queue, lines, policy, **fields) as (h, _, _):
        st = await until(h, lambda s: s.pending_approval is not None, WAIT)
        assert asked(st) == "probe"
        assert st.owner == ["sol.salesops@example.com"]


async def test_a_quiet_rule_asks_nobody(time_env: WorkflowEnvironment, task_queue: str) -> None:
    """Under every threshold the desk passes on its own."""
    lines = [line("A", 10, 1000, 5, 100)]
    async with quote_deal(time_env, task_queue, lines, None, payment_terms_days="30") as (h, _, _):
        st = await until(h, lambda s: s.stage == Stage.CLOSE, WAIT)
        assert st.approvals == []


async def test_line_changes_ask_again_only_the_rules_whose_inputs_moved_past(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """CFO approved a 45% line: 42% stays approved; 50% asks the CFO again, only."""
    async with quote_deal(time_env, task_queue, DEEP_LINE) as (handle, _, crm):
        await until(handle, lambda s: asked(s) == "line_discount", WAIT)
        await update(handle, Msg.APPROVE, approver=CFO, reason="One-off install")
        await until(handle, lambda s: s.stage == Stage.CLOSE, WAIT)

        lesser = [DEEP_LINE[0], line("Install", 1, 5000, 42, 1000)]
        await crm_edit(handle, crm, lesser)
        st = await until(handle, lambda s: s.terms.lines[1].discount_percent == 42, WAIT)
        assert st.stage == Stage.CLOSE and st.pending_approval is None

        deeper = [DEEP_LINE[0], line("Install", 1, 5000, 50, 1000)]
        await crm_edit(handle, crm, deeper)
        st = await until(handle, lambda s: s.pending_approval is not None, WAIT)
        assert asked(st) == "line_discount" and st.owner == [CFO]
        assert st.pending_approval is not None and st.pending_approval.value == 50
        await update(handle, Msg.APPROVE, approver=CFO, reason="Still a one-off")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE, WAIT)
        assert [(a.tier, a.value) for a in st.approvals] == [
            ("line_discount", 45),
            ("line_discount", 50),
        ]


async def test_margin_floor_is_asked_again_only_when_the_margin_drops_further(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """VP approved a 15% margin: a better margin stays approved; 10% asks again."""
    lines = [line("Hardware", 10, 1000, 0, 850)]
    async with quote_deal(time_env, task_queue, lines) as (handle, _, crm):
        await until(handle, lambda s: asked(s) == "margin_floor", WAIT)
        await update(handle, Msg.APPROVE, approver=VP, reason="Strategic logo")
        await until(handle, lambda s: s.stage == Stage.CLOSE, WAIT)
        await crm_edit(handle, crm, [line("Hardware", 10, 1000, 0, 830)])
        st = await until(handle, lambda s: s.margin_percent == 17, WAIT)
        assert st.pending_approval is None and st.stage == Stage.CLOSE
        await crm_edit(handle, crm, [line("Hardware", 10, 1000, 0, 900)])
        st = await until(handle, lambda s: asked(s) == "margin_floor", WAIT)
        assert st.margin_percent == 10 and st.owner == [VP]


async def test_the_deal_desk_asks_the_rep_and_the_answer_returns_to_the_approver(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """request_info waits on the rep with its own task; the answer goes back to the CFO."""
    async with quote_deal(time_env, task_queue, DEEP_LINE) as (handle, notifier, crm):
        await until(handle, lambda s: asked(s) == "line_discount", WAIT)
        code = await refused(handle, Msg.REQUEST_INFO, approver=VP, question="Why?")
        assert code == Refusal.NOT_AUTHORISED
        code = await refused(handle, Msg.ANSWER_INFO, by=OWNER, answer="nothing asked")
        assert code == Refusal.NOT_PENDING

        receipt = await update(
            handle, Msg.REQUEST_INFO, approver=CFO, question="Why 45% on the install?"
        )
        assert receipt.waiting_on == WaitingOn.INFO_REQUEST
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.INFO_REQUEST, WAIT)
        assert st.owner == [OWNER] and "Why 45% on the install?" in st.waiting_for
        assert asked(st) == "line_discount"  # the tier stays the CFO's
        await eventually(
            lambda: any("Deal desk question" in s for s in notifier.subjects_for(OWNER)),
            "the rep told of the question",
        )
        await eventually(
            lambda: any(
                "Why 45% on the install?" in str(r.data) for r in crm.records(st.deal_id, "task")
            ),
            "a CRM task for the rep",
        )
        code = await refused(handle, Msg.REQUEST_INFO, approver=CFO, question="And?")
        assert code == Refusal.DUPLICATE
        code = await refused(handle, Msg.ANSWER_INFO, by=MANAGER, answer="Not mine")
        assert code == Refusal.NOT_AUTHORISED

        receipt = await update(
            handle, Msg.ANSWER_INFO, by=OWNER, answer="Competitor quoted it free"
        )
        assert receipt.waiting_on == WaitingOn.DISCOUNT_APPROVAL
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.DISCOUNT_APPROVAL, WAIT)
        assert st.owner == [CFO]
        [q] = st.conversation
        assert (q.approver, q.answer, q.answered_by) == (CFO, "Competitor quoted it free", OWNER)
        await eventually(
            lambda: any(s.startswith("Answer on") for s in notifier.subjects_for(CFO)),
            "the CFO told of the answer",
        )
        notes = notes_of(crm, st.deal_id)
        assert any("Why 45% on the install?" in n and "Competitor" in n for n in notes)
        trail = [h.detail for h in st.history]
        assert any("question to the rep" in d for d in trail)
        assert any("answer to" in d for d in trail)

        await update(handle, Msg.APPROVE, approver=CFO, reason="Fair enough")
        await until(handle, lambda s: s.stage == Stage.CLOSE, WAIT)


async def test_an_unanswered_question_escalates_on_its_own_sla(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The rep's answer is due within the policy's info_request SLA, then escalates."""
    async with quote_deal(time_env, task_queue, DEEP_LINE) as (handle, _, _):
        await until(handle, lambda s: asked(s) == "line_discount", WAIT)
        await update(handle, Msg.REQUEST_INFO, approver=CFO, question="Cost breakdown?")
        await until(handle, lambda s: s.waiting_on == WaitingOn.INFO_REQUEST, WAIT)
        await skip(time_env, handle, timedelta(days=2, hours=1))
        st = await until(handle, lambda s: s.sla_state in ("breached", "escalated"), WAIT)
        assert st.waiting_on == WaitingOn.INFO_REQUEST
        assert any(h.kind == "escalation" for h in st.history)


async def test_a_renewal_reads_its_quote_and_a_deep_line_asks_the_cfo(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The renewal handoff reads the CRM's lines too: its 45% line asks the CFO at pricing,
    and the approved real margin is written back."""
    now = await time_env.get_current_time()
    deal = make_deal(f"RQ-{uuid.uuid4().hex[:8]}", discount=0)
    deal.fields["contract_end_date"] = (now + timedelta(days=30)).date().isoformat()
    crm, policy = MemoryConnector([deal]), default_policy()
    crm.set_line_items(deal.id, DEEP_LINE)
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await time_env.client.start_workflow(
            RenewalExpansion.run,
            RenewalInput(
                crm="memory", deal_id=deal.id, policy=policy, policy_version=policy.version
            ),
            id=names.renewal_id("memory", deal.id),
            task_queue=task_queue,
        )
        track(task_queue, handle.id)
        st = await until(handle, lambda s: s.stage == RenewalStage.USAGE, WAIT)
        assert len(st.terms.lines) == 2 and st.margin_source == "lines"
        await give_evidence(handle, "usage_confirmed", by="amy.am@example.com")
        st = await until(handle, lambda s: s.pending_approval is not None, WAIT)
        assert asked(st) == "line_discount" and st.owner == [CFO]
        await update(handle, Msg.APPROVE, approver=CFO, reason="Renewal install")
        await until(handle, lambda s: s.stage == RenewalStage.SIGNATURE, WAIT)
        await eventually(
            lambda: crm.get_deal(deal.id).fields.get("real_margin") == "50.4",
            "the renewal's real margin written back",
        )
