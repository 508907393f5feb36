"""Business calendars on the time-skipping server: an SLA started on a Friday afternoon
counts only the team's working hours, so its reminder and escalation wait for Monday;
an approval tier's clock counts the approver's calendar; without calendars nothing
changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    skip,
    skip_time,
    start,
    until,
)
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.names import WaitingOn

NY = ZoneInfo("America/New_York")
SALES = {
    "timezone": "America/New_York",
    "hours": "09:00-17:00",
    "roles": ["deal_owner", "sales_rep", "sales_manager"],
}


async def to_next_friday_3pm(env: WorkflowEnvironment) -> datetime:
    """Skip the test server's time to the next Friday, 15:00 in New York."""
    now = (await env.get_current_time()).astimezone(NY)
    day = now.date() + timedelta(days=(4 - now.weekday()) % 7 or 7)
    friday = datetime.combine(day, time(15, 0), NY)
    await skip_time(env, friday - now)
    return friday


def four_hours_from(asked: datetime, friday: datetime) -> datetime:
    """Four working hours from `asked` (Friday after 15:00): what is left of Friday
    until 17:00, the rest from Monday 9:00 (UTC)."""
    assert timedelta(0) <= asked - friday < timedelta(minutes=5)
    friday_left = datetime.combine(friday.date(), time(17), NY) - asked
    monday_opens = datetime.combine((friday + timedelta(days=3)).date(), time(9), NY)
    return (monday_opens + timedelta(hours=4) - friday_left).astimezone(UTC)


def new_id() -> str:
    return f"CAL-{uuid.uuid4().hex[:8]}"


async def test_a_friday_afternoon_sla_is_due_monday_and_escalates_only_then(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Qualify, 4 working hours from Friday 15:00: due Monday 11:00, reminded Monday
    10:00; over the weekend it is not even due soon; on Monday noon it has escalated."""
    policy = policy_with(
        calendars={"sales": SALES}, stages__qualify__sla="4h", stages__qualify__remind_before="1h"
    )
    deal = make_deal(new_id())
    crm = MemoryConnector([deal])
    friday = await to_next_friday_3pm(time_env)
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=policy)
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        assert st.since is not None
        assert st.due_at == four_hours_from(st.since, friday)  # Monday about 11:00
        await skip(time_env, handle, timedelta(days=2))  # Sunday 15:00
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        assert st.sla_state == "ok"
        assert not [h for h in st.history if h.kind in ("reminder", "escalation")]
        await skip(time_env, handle, timedelta(hours=19, minutes=5))  # Monday 10:05
        st = await until(handle, lambda s: s.sla_state == "due_soon")
        await skip(time_env, handle, timedelta(hours=2))  # Monday 12:05
        st = await until(handle, lambda s: s.sla_state == "escalated")
    tasks = {
        (r.data["owner_email"], r.data["subject"].split(":")[0])
        for r in crm.records(deal.id, "task")
    }
    assert (OWNER, "Reminder") in tasks and (MANAGER, "Escalation") in tasks


async def test_an_approval_tier_counts_the_approvers_business_hours(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A 20% discount asked of the sales manager on Friday 15:00 with a 4h tier SLA is
    due Monday 11:00 New York time, in `status` and the pending approval alike."""
    policy = policy_with(
        calendars={"sales": SALES},
        discounts__tiers__1__sla="4h",
        discounts__tiers__1__remind_before="1h",
    )
    deal = make_deal(new_id(), discount=20)
    crm = MemoryConnector([deal])
    friday = await to_next_friday_3pm(time_env)
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=policy)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.pending_approval is not None
        assert st.pending_approval.approvers == [MANAGER]
        assert st.since is not None
        assert st.due_at == four_hours_from(st.since, friday)
        assert st.pending_approval.due_at == st.due_at


async def test_without_calendars_an_sla_counts_round_the_clock(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The same Friday start with no calendar: due four hours later, Friday 19:00."""
    policy = policy_with(stages__qualify__sla="4h", stages__qualify__remind_before="1h")
    deal = make_deal(new_id())
    crm = MemoryConnector([deal])
    friday = await to_next_friday_3pm(time_env)
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=policy)
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        assert st.since is not None and st.due_at == st.since + timedelta(hours=4)
        assert st.since - friday < timedelta(minutes=5)
