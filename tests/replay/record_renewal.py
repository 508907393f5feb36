"""Record the renewal history that the `workflow.patched` example replays.

    .venv/bin/python tests/replay/record_renewal.py

It runs the renewal as it was BEFORE the heads-up task was added (`RenewalBeforeHeadsUp`
below: today's `RenewalExpansion` with its window stage as it was then) on the
time-skipping server with a memory CRM: the window opens, usage is confirmed, the renewal
is signed. The history is saved to tests/replay/histories/renewal_before_<patch id>.json,
where `tests/replay/test_patching.py` proves today's code still replays it.

Re-record only to add a scenario, never to hide a replay failure: a history is what a
running workflow already did, and production has runs like it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).parents[1]))

from support.handoffs import OWNER, give_evidence, make_deal, skip, until

from activities.crm import CrmActivities
from activities.notify import LogNotifier, NotifyActivities
from connectors.memory import MemoryConnector
from workflows import names
from workflows.discount_approval import DiscountApproval
from workflows.messages import DealStatus
from workflows.names import WaitingOn
from workflows.policy import default_policy
from workflows.renewal import WINDOW_HEADS_UP, RenewalExpansion, RenewalInput, RenewalStage

HISTORIES = Path(__file__).with_name("histories")
HISTORY = HISTORIES / f"renewal_before_{WINDOW_HEADS_UP}.json"
ACCOUNT_MANAGER = "amy.am@example.com"
DAYS_TO_CONTRACT_END = 100


@workflow.defn(name="RenewalExpansion")
class RenewalBeforeHeadsUp(RenewalExpansion):
    """The renewal before `WINDOW_HEADS_UP`: the window opens with no heads-up task."""

    @workflow.init
    def __init__(self, inp: RenewalInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: RenewalInput) -> DealStatus:
        return await super().run(inp)

    async def _window_before(self) -> None:
        opens = self._contract_end() - timedelta(days=self.rules.notice_days)
        await self.wait_until_time(
            "window",
            opens,
            what=f"the renewal window ({opens:%Y-%m-%d})",
            owner=self.people(self.rules.owner),
        )
        self.advance(
            RenewalStage.USAGE,
            f"Renewal window open: contract ends {self._contract_end():%Y-%m-%d}.",
        )

    _stages = {**RenewalExpansion._stages, RenewalStage.WINDOW: _window_before}


async def record(env: WorkflowEnvironment) -> Path:
    """Run the old renewal from start to signature and save its history."""
    client: Client = env.client
    now = await env.get_current_time()
    deal = make_deal("R-before-heads-up", discount=0)
    deal.fields["contract_end_date"] = (
        (now + timedelta(days=DAYS_TO_CONTRACT_END)).date().isoformat()
    )
    crm, policy, task_queue = MemoryConnector([deal]), default_policy(), f"tq-{uuid.uuid4()}"
    activities = CrmActivities(crm)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RenewalBeforeHeadsUp, DiscountApproval],
        # this script is __main__, which the sandbox cannot re-import; the history is the same
        workflow_runner=UnsandboxedWorkflowRunner(),
        activities=[
            activities.get_deal,
            activities.write_back,
            NotifyActivities(LogNotifier()).send,
        ],
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=4),
    ):
        handle = await client.start_workflow(
            RenewalBeforeHeadsUp.run,
            RenewalInput(
                crm="memory", deal_id=deal.id, policy=policy, policy_version=policy.version
            ),
            id=names.renewal_id("memory", deal.id),
            task_queue=task_queue,
        )
        await until(handle, lambda s: s.waiting_on == WaitingOn.TIME)
        await skip(env, handle, timedelta(days=DAYS_TO_CONTRACT_END - 90, hours=1))
        await until(handle, lambda s: s.stage == RenewalStage.USAGE)
        await give_evidence(handle, "usage_confirmed", by=ACCOUNT_MANAGER)
        await until(handle, lambda s: s.stage == RenewalStage.SIGNATURE)
        await give_evidence(handle, "renewal_signed", by=OWNER)
        await handle.result()
        history = await handle.fetch_history()
    heads_up = [r for r in crm.records(deal.id, "task") if "window open" in str(r.data)]
    assert not heads_up, "the old code must not send the heads-up"
    HISTORIES.mkdir(exist_ok=True)
    HISTORY.write_text(history.to_json())
    return HISTORY


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=shutil.which("temporal-test-server")
        or str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    from worker.client.temporal import ensure_search_attributes

    async with env:
        await ensure_search_attributes(env.client, "default")
        print(f"recorded {await record(env)}")


if __name__ == "__main__":
    asyncio.run(main())
