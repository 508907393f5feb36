"""The worker process: Handoff's workflows and activities on one task queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
from collections.abc import Sequence
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.crm import CrmActivities
from activities.feed import DealEvents, FeedActivities
from activities.notify import LinkMaker, LogNotifier, Notifier, NotifyActivities
from activities.stage_events import StageRecorder
from connectors.base import CrmConnector
from worker.processes.runner import SandboxedRunner
from worker.settings import Settings
from workflows.change_feed import ChangeFeed
from workflows.policy import Policy
from workflows.registry import WORKER_WORKFLOWS

log = structlog.get_logger("handoff.worker")

#: Every handoff type's workflow, the change feed and the legacy approval child: from the
#: registry, so a type made by `handoff new` is registered with no hand wiring.
WORKFLOWS: Sequence[type] = WORKER_WORKFLOWS
#: Threads for the (blocking) CRM client libraries.
ACTIVITY_THREADS = 32
#: Workflow runs kept in memory (the SDK default is 1,000). A parked handoff is two runs
#: and wakes rarely (an approval, a reminder), so a smaller cache bounds the worker's
#: memory at the price of a ~0.1 s replay when an evicted handoff wakes up.
MAX_CACHED_WORKFLOWS = 500
DEPLOYMENT_NAME = "handoff"
#: Pure-data modules (pydantic models, the policy, names) imported once and shared by
#: every workflow run instead of re-imported into each run's sandbox: they hold no state
#: and read no clock. Re-importing them cost ~0.3 s of CPU per new run, cache miss or
#: replay (docs/benchmarks.md). A module that workflow code imports, and whose models a
#: passed-through module uses, must be passed through too: else the sandbox builds a
#: second copy of each class, and pydantic refuses the other copy's instances (a `status`
#: query fails on `HistoryEntry`). `strict_workflow_runner` keeps everything else in
#: `workflows/` sandboxed, so tests still catch a clock, random or I/O call in it.
DATA_MODULES = (
    "pydantic",
    "pydantic_core",
    "yaml",
    "connectors.mapping",
    "workflows.messages",
    "workflows.records",  # the records the messages and the state are made of
    "workflows.policy",
    "workflows.policy_checks",  # the policy model's own checks
    "workflows.policy_people",
    # the policy's rules: their `Annotated[..., BeforeValidator(f)]` types are cached
    # by `typing` per `f`, so a per-run copy of `f` kept each run's module alive
    "workflows.policy_rules",
    "workflows.policy_quote",
    "workflows.quote",
    "workflows.business_hours",  # its time zones must be real `tzinfo`s, not sandbox proxies
    "workflows.names",
    "workflows.options",
    "workflows.metrics",
    "workflows.discount_approval_messages",
    "workflows.kit.state",
    "workflows.kit.clock",
    "workflows.kit.ladder",
)
#: What the worker passes through: all of `workflows/` (deterministic by design, no I/O:
#: DESIGN.md; no module holds mutable state), on top of `DATA_MODULES`. The sandbox
#: otherwise re-imports the workflow logic (~30 modules, the state and input models
#: with the policy's schema) into every run: ~1.75 MiB per cached run against ~0.23 MiB
#: now, and 3x the replay time (docs/benchmarks.md, "Issue 14, second stop"). The
#: sandbox's restrictions still apply to any module not passed through; for
#: `workflows/` itself, the replay tests also replay every history under
#: `strict_workflow_runner`.
PASSTHROUGH_MODULES = (*DATA_MODULES, "workflows")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The worker's sandbox, with `PASSTHROUGH_MODULES` shared (also for replayers)."""
    return SandboxedRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def strict_workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with only `DATA_MODULES` shared: every run re-imports the workflow
    logic, so a clock, random, file or network call in `workflows/` raises
    `RestrictedWorkflowAccessError`. For tests: slower and heavier than the worker's."""
    return SandboxedRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*DATA_MODULES)
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    connector: CrmConnector,
    notifier: Notifier | None = None,
    links: LinkMaker | None = None,
    events: DealEvents | None = None,
    stage_events: StageRecorder | None = None,
    executor: concurrent.futures.ThreadPoolExecutor | None = None,
    graceful_shutdown: timedelta = timedelta(seconds=70),
    build_id: str | None = None,
) -> Worker:
    """A worker with every Handoff workflow and activity, bound to `connector`; with
    `stage_events`, the CRM write-backs and approval nudges feed the stall analytics."""
    crm = CrmActivities(connector, stage_events)
    notify = NotifyActivities(notifier or LogNotifier(), links, stage_events)
    feed = [FeedActivities(events).dispatch] if events is not None else []
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=workflow_runner(),
        max_cached_workflows=MAX_CACHED_WORKFLOWS,
        activities=[
            crm.open_deal,
            crm.get_deal,
            crm.get_line_items,
            crm.owner_manager,
            crm.write_back,
            crm.create_billing_document,
            crm.read_changes,
            notify.send,
            notify.request_approval,
            *feed,
        ],
        activity_executor=executor
        or concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS),
        max_concurrent_activities=ACTIVITY_THREADS,
        # on SIGINT/SIGTERM running CRM writes finish instead of being cancelled
        graceful_shutdown_timeout=graceful_shutdown,
        deployment_config=deployment(build_id),
    )


def deployment(build_id: str | None) -> WorkerDeploymentConfig | None:
    """Worker versioning: this worker is build `build_id` of deployment `handoff`.

    Running workflows auto-upgrade to the current build (their code changes are guarded
    by `workflow.patched` and the replay tests), so a deploy never strands one; ops move
    traffic with `temporal worker deployment set-current-version` (docs/deploy.md).
    """
    if build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=DEPLOYMENT_NAME, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then finish in-flight tasks and stop."""
    from worker.client.temporal import connect, ensure_search_attributes
    from worker.http.ingress.temporal_starter import TemporalStarter
    from worker.http.links import SignedLinks
    from worker.metrics import make_runtime
    from worker.policy import PolicySource
    from worker.processes.crm import make_connector
    from worker.processes.notifiers import make_notifier
    from worker.stalls.store import open_store

    source = PolicySource.from_settings(settings)  # change-feed starts read it live
    policy = source.current()
    client = await connect(settings, runtime=make_runtime(settings))
    await ensure_search_attributes(client, settings.temporal_namespace)
    worker = build_worker(
        client,
        task_queue=settings.task_queue,
        connector=make_connector(settings, policy),
        notifier=make_notifier(settings),
        links=SignedLinks.from_settings(settings),
        events=TemporalStarter(client, source, settings.task_queue),
        stage_events=open_store(settings),
        graceful_shutdown=timedelta(seconds=settings.graceful_shutdown_s),
        build_id=settings.build_id if settings.worker_versioning else None,
    )
    if settings.crm == "salesforce" and settings.change_feed:
        await ensure_change_feed(client, settings, policy)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started",
        task_queue=settings.task_queue,
        temporal=settings.temporal_address,
        namespace=settings.temporal_namespace,
        crm=settings.crm,
        policy_version=policy.version,
        metrics_port=settings.metrics_port,
    )
    async with worker:
        await stop.wait()
    log.info("worker stopped")


async def ensure_change_feed(client: Client, settings: Settings, policy: Policy) -> None:
    """Start the CRM change-feed poller once; an already running one is kept."""
    from temporalio.common import WorkflowIDConflictPolicy

    from workflows.change_feed import ChangeFeedInput, change_feed_id

    await client.start_workflow(
        ChangeFeed.run,
        ChangeFeedInput(crm=settings.crm, policy=policy, poll_every_s=settings.feed_poll_s),
        id=change_feed_id(settings.crm, settings.task_queue),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
