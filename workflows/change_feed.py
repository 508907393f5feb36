"""`ChangeFeed`: a durable poller that turns CRM changes into lead-to-cash messages.

It reads changed deals after a cursor (Salesforce: SOQL on `SystemModstamp`), hands
each page to the dispatch activity (signal-with-start on deterministic workflow IDs,
every message carrying the change's id), and only then moves the cursor. A crash
between the two re-delivers the page, and the target workflows drop the repeats, so a
change is never missed and never acts twice. Handoff's own writes come back marked as
echoes and are skipped. The run continues as new every few pages to stay small.

Query: `status` (cursor, pages, changes dispatched, echoes ignored).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.crm import ChangesRequest, CrmActivities
    from activities.feed import DispatchRequest, FeedActivities

from workflows import names
from workflows.names import TASK_QUEUE
from workflows.options import CRM_READ, CRM_WRITE
from workflows.policy import SharedPolicy


class FeedState(BaseModel):
    """Everything the poller carries across continue-as-new."""

    cursor: str | None = None
    pages: int = 0
    dispatched: int = 0
    echoes: int = 0


class ChangeFeedInput(BaseModel):
    crm: str
    policy: SharedPolicy
    state: FeedState = Field(default_factory=FeedState)
    poll_every_s: float = 30.0
    page_size: int = 200
    pages_per_run: int = 50


def change_feed_id(crm: str, task_queue: str = TASK_QUEUE) -> str:
    """One poller per CRM connection and task queue (`change-feed-<crm>` on the default
    queue), so stacks sharing a Temporal namespace on other queues each have their own."""
    return f"change-feed-{crm}" if task_queue == TASK_QUEUE else f"change-feed-{crm}-{task_queue}"


@workflow.defn
class ChangeFeed:
    """Polls the CRM for changed deals and feeds them to lead-to-cash workflows."""

    @workflow.init
    def __init__(self, inp: ChangeFeedInput) -> None:
        self.state = inp.state.model_copy()

    @workflow.run
    async def run(self, inp: ChangeFeedInput) -> None:
        for _ in range(inp.pages_per_run):
            page = await workflow.execute_activity_method(
                CrmActivities.read_changes,
                ChangesRequest(cursor=self.state.cursor, limit=inp.page_size),
                **CRM_READ,
            )
            if page.changes:
                result = await workflow.execute_activity_method(
                    FeedActivities.dispatch,
                    DispatchRequest(
                        crm=inp.crm,
                        changes=page.changes,
                        trigger_crm_stages=inp.policy.trigger_crm_stages,
                        evidence_fields=inp.policy.evidence_fields,
                    ),
                    **CRM_WRITE,
                )
                self.state.dispatched += result.started_or_signalled
                self.state.echoes += result.ignored_echoes
            self.state.cursor = page.cursor  # only after the page was delivered
            self.state.pages += 1
            if page.done:
                await workflow.sleep(timedelta(seconds=inp.poll_every_s))
        workflow.continue_as_new(inp.model_copy(update={"state": self.state}))

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> FeedState:
        return self.state
