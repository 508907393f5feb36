"""The one client path: start, signal, update, query and list any handoff in Temporal.

Every surface (CLI, JSON API, web pages, signed links, webhook ingress, the Salesforce
feed starter, demo and bench) reaches handoffs through this module, for every type in
`workflows.registry`. A handoff is addressed by a `HandoffRef`: (type, crm, deal id),
or a workflow id, which parses back into those.

Errors are translated here, in one place: a refused update raises `Refused` with its
typed `Refusal` code (the workflow's `ApplicationError(message, code, type=REFUSED)`),
an update to a finished handoff is `Refused(ENDED)`, and a handoff never started is
`HandoffNotFound`. Surfaces map these to HTTP statuses and exit codes by code, never
by the words of the reason.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from connectors.lines import QuoteLine
from workflows import names, registry
from workflows.messages import DealStatus, Receipt, SurfaceRefusalIn
from workflows.names import QUERY_STATUS, REFUSED, Msg, Refusal, WaitingOn
from workflows.policy import Policy
from workflows.registry import Carried, HandoffType

log = structlog.get_logger("handoff.client")

#: How long a status query may take before the handoff counts as unavailable.
QUERY_TIMEOUT_S = 10.0
#: Status queries in flight at once when listing (each is a round trip to a worker).
QUERY_CONCURRENCY = 16
#: An email safe inside a visibility query: no quotes, backslashes or spaces.
EMAIL_PATTERN = r"^[^'\"\\\s]{3,254}$"
_EMAIL = re.compile(EMAIL_PATTERN)


# -- addressing --------------------------------------------------------------------------
@dataclass(frozen=True)
class HandoffRef:
    """One deal's handoff of one type."""

    type: HandoffType
    crm: str
    deal_id: str

    @property
    def workflow_id(self) -> str:
        return self.type.workflow_id(self.crm, self.deal_id)

    @classmethod
    def of(cls, handoff_type: str | None, crm: str, deal_or_workflow_id: str) -> HandoffRef:
        """From a type name (default lead-to-cash), a CRM and a deal id; a full workflow id
        in place of the deal id (`renewal-hubspot-1001`) names its own type and CRM.
        Raises `registry.UnknownHandoffType` for a type that is not registered."""
        parsed = registry.parse_workflow_id(deal_or_workflow_id)
        if parsed is not None:
            return cls(*parsed)
        return cls(registry.get(handoff_type or registry.DEFAULT_TYPE), crm, deal_or_workflow_id)

    @classmethod
    def from_workflow_id(cls, workflow_id: str) -> HandoffRef:
        """The handoff a workflow id names; `HandoffNotFound` if no type matches it."""
        parsed = registry.parse_workflow_id(workflow_id)
        if parsed is None:
            raise HandoffNotFound(f"{workflow_id!r} is not the workflow id of any handoff type")
        return cls(*parsed)

    def __str__(self) -> str:
        return self.workflow_id


# -- errors ------------------------------------------------------------------------------
class HandoffError(Exception):
    """Base of what reaching a handoff can fail with; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(HandoffError):
    """The handoff refused a message; `code` is the typed reason surfaces map."""

    def __init__(self, message: str, code: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.message, self.code = message, code


class HandoffNotFound(HandoffError):
    """No handoff of this type was ever started for this deal."""


def refusal_of(message: str, err: WorkflowUpdateFailedError) -> Refused | None:
    """The typed refusal inside a failed update, or None if it failed otherwise.

    The code is the first detail of the workflow's `ApplicationError(type=REFUSED)`. A
    refusal without a detail (workflows from before typed codes) counts as `not_pending`."""
    cause = err.cause
    if not isinstance(cause, ApplicationError) or cause.type != REFUSED:
        return None
    detail = cause.details[0] if cause.details else None
    try:
        code = Refusal(detail) if detail is not None else Refusal.NOT_PENDING
    except ValueError:
        code = Refusal.NOT_PENDING
    text, prefix = cause.message, f"{message} refused: "
    return Refused(message, code, text[len(prefix) :] if text.startswith(prefix) else text)


async def _describe_status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The execution status of the newest run, or None if there never was one."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return desc.status


async def _missing(client: Client, ref: HandoffRef, message: str) -> HandoffError:
    """Why a running handoff was not found: it ended, or it never started."""
    state = await _describe_status(client, ref.workflow_id)
    if state is None:
        return HandoffNotFound(
            f"no {ref.type.name} handoff for deal {ref.deal_id!r} in {ref.crm} "
            f"(workflow {ref.workflow_id})"
        )
    return Refused(
        message,
        Refusal.ENDED,
        f"the {ref.type.name} handoff of deal {ref.deal_id!r} in {ref.crm} has ended "
        f"({state.name.lower()})",
    )


# -- starting ----------------------------------------------------------------------------
async def carried_from(client: Client, ref: HandoffRef) -> Carried:
    """What `ref` continues from its type's predecessor: the final status of the deal's
    closed handoff of that type (a renewal after a completed lead-to-cash), if any."""
    if ref.type.continues is None:
        return Carried()
    before = HandoffRef(registry.get(ref.type.continues), ref.crm, ref.deal_id)
    try:
        desc = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=before.workflow_id),
            )
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Carried()
        raise
    if desc.workflow_execution_info.status != WorkflowExecutionStatus.COMPLETED.value:
        return Carried()
    final = await client.get_workflow_handle(before.workflow_id, result_type=DealStatus).result()
    return Carried(from_workflow_id=final.workflow_id, terms=final.terms, approvals=final.approvals)


async def start(
    client: Client,
    ref: HandoffRef,
    *,
    policy: Policy,
    task_queue: str,
    carried: Carried | None = None,
) -> tuple[WorkflowHandle[Any, DealStatus], bool]:
    """Start the handoff; returns (handle, started). Already started: a no-op, and a
    closed handoff's id is never reused. A type that continues another carries its
    context (see `carried_from`) unless `carried` is given."""
    if carried is None:
        carried = await carried_from(client, ref)
    try:
        handle: WorkflowHandle[Any, DealStatus] = await client.start_workflow(
            ref.type.workflow_type,
            ref.type.start_input(ref.crm, ref.deal_id, policy, carried),
            id=ref.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=DealStatus,
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(ref.workflow_id, result_type=DealStatus), False
    return handle, True


async def signal_with_start(
    client: Client,
    ref: HandoffRef,
    *,
    policy: Policy,
    task_queue: str,
    signal: str,
    payload: Any,
) -> bool:
    """Deliver `signal`, starting the handoff first if needed. False if it already ended."""
    try:
        await client.start_workflow(
            ref.type.workflow_type,
            ref.type.start_input(ref.crm, ref.deal_id, policy, Carried()),
            id=ref.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=signal,
            start_signal_args=[payload],
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


# -- messages and queries ----------------------------------------------------------------
async def reopen(client: Client, ref: HandoffRef, *, policy: Policy, task_queue: str) -> bool:
    """The deal was re-opened in the CRM after its handoff ended lost: start a new run of
    the same workflow id, linked to the lost one. False when the last run did not end
    lost (running, completed, or never started): nothing is started then."""
    try:
        last = await status(client, ref)  # a closed run still answers its status query
    except (HandoffError, RPCError, TimeoutError):
        return False
    if last.outcome != "lost":
        return False
    desc = await client.get_workflow_handle(ref.workflow_id).describe()
    carried = Carried(from_workflow_id=f"{ref.workflow_id}/{desc.run_id}")
    try:
        await client.start_workflow(
            ref.type.workflow_type,
            ref.type.start_input(ref.crm, ref.deal_id, policy, carried),
            id=ref.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,  # only after a lost run
        )
    except WorkflowAlreadyStartedError:  # re-opened twice at once: one new run
        return False
    return True


async def signal(client: Client, ref: HandoffRef, name: str, payload: Any) -> bool:
    """Signal the handoff if it is running; False when there is none (or it ended)."""
    try:
        await client.get_workflow_handle(ref.workflow_id).signal(name, payload)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False
        raise
    return True


async def record_refusal(client: Client, ref: HandoffRef, refusal: SurfaceRefusalIn) -> bool:
    """Record in the handoff's audit trail a refusal a surface made before any message
    reached it (a signed link used twice or forwarded, a forged form). A signal: the
    surface answers at once, and the workflow keeps it apart with its own refusals.
    False when the handoff is not running (a finished one keeps its trail as it is)."""
    payload = refusal.model_dump(mode="json", exclude_none=True)
    return await signal(client, ref, Msg.RECORD_REFUSAL, payload)


async def update(client: Client, ref: HandoffRef, message: str, payload: Any) -> Receipt:
    """Send `message` as a validated update and return the workflow's receipt.

    Raises `Refused` (with its code) or `HandoffNotFound`; other failures propagate."""
    handle = client.get_workflow_handle(ref.workflow_id)
    try:
        receipt: Receipt = await handle.execute_update(message, payload, result_type=Receipt)
    except WorkflowUpdateFailedError as err:
        refused = refusal_of(message, err)
        if refused is None:
            raise
        raise refused from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise await _missing(client, ref, message) from err
        raise
    return receipt


async def status(client: Client, ref: HandoffRef) -> DealStatus:
    """The handoff's `status` query (a finished handoff answers it too)."""
    try:
        return await status_of(client, ref.workflow_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HandoffNotFound(
                f"no {ref.type.name} handoff for deal {ref.deal_id!r} in {ref.crm} "
                f"(workflow {ref.workflow_id})"
            ) from err
        raise


async def status_of(client: Client, workflow_id: str) -> DealStatus:
    """The `status` query of a workflow id's newest run. A completed run whose history
    the worker cannot replay (code changed since, or a history the server wrote out of
    step) answers with what it returned when it closed: its final status."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await asyncio.wait_for(
            handle.query(QUERY_STATUS, result_type=DealStatus), QUERY_TIMEOUT_S
        )
    except TimeoutError as err:  # asyncio's says nothing; say which run did not answer
        raise TimeoutError(
            f"no worker answered the status query of {workflow_id} in {QUERY_TIMEOUT_S:g} s"
        ) from err
    except WorkflowQueryFailedError:
        if await _describe_status(client, workflow_id) != WorkflowExecutionStatus.COMPLETED:
            raise
        log.warning("status query failed on a closed run; its result answers", id=workflow_id)
        closed = client.get_workflow_handle(workflow_id, result_type=DealStatus)
        ended: DealStatus = await closed.result()
        return ended


async def is_running(client: Client, workflow_id: str) -> bool:
    return await _describe_status(client, workflow_id) == WorkflowExecutionStatus.RUNNING


# -- listing -----------------------------------------------------------------------------
def quote(value: str) -> str:
    """A value quoted for a visibility query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def running_query(
    types: list[HandoffType] | None = None,
    *,
    waiting_on: str | None = None,
    stage: str | None = None,
    owner: str | None = None,
    crm: str | None = None,
) -> str:
    """Running handoffs of `types` (default: all), filtered by search attributes."""
    clauses = [registry.visibility_clause(types), "ExecutionStatus = 'Running'"]
    for attr, value in (
        ("WaitingOn", waiting_on),
        ("Stage", stage),
        ("Owner", owner),
        ("Crm", crm),
    ):
        if value:
            clauses.append(f"{attr} = {quote(value)}")
    return " AND ".join(clauses)


class Listing(BaseModel):
    """One running handoff as visibility lists it (no worker round trip)."""

    workflow_id: str
    type: str
    crm: str
    deal_id: str
    stage: str
    waiting_on: str
    owner: list[str]
    due_at: datetime | None


async def list_open(client: Client, query: str) -> list[Listing]:
    """Running handoffs matching a visibility `query` (see `running_query`)."""
    found = []
    async for wf in client.list_workflows(query):
        sa = wf.typed_search_attributes
        t = registry.for_workflow_type(wf.workflow_type)
        found.append(
            Listing(
                workflow_id=wf.id,
                type=t.name if t else wf.workflow_type,
                crm=sa.get(names.CRM) or "",
                deal_id=sa.get(names.DEAL_ID) or "",
                stage=sa.get(names.STAGE) or "",
                waiting_on=sa.get(names.WAITING_ON) or "",
                owner=list(sa.get(names.OWNER) or []),
                due_at=sa.get(names.DUE_AT),
            )
        )
    return found


async def _status_or_none(
    client: Client, workflow_id: str, sem: asyncio.Semaphore
) -> DealStatus | None:
    async with sem:
        try:
            return await status_of(client, workflow_id)
        # ended meanwhile, no worker answers, or the query failed in the worker
        except (RPCError, TimeoutError, WorkflowQueryFailedError) as exc:
            log.warning("status unavailable", workflow_id=workflow_id, error=str(exc))
            return None


async def open_statuses(client: Client, query: str | None = None) -> list[DealStatus]:
    """The status of every running handoff matching `query` (default: every type)."""
    ids = [wf.id async for wf in client.list_workflows(query or running_query())]
    sem = asyncio.Semaphore(QUERY_CONCURRENCY)
    found = await asyncio.gather(*(_status_or_none(client, wf_id, sem) for wf_id in ids))
    return [st for st in found if st is not None and not st.done]


def valid_email(value: str) -> bool:
    """Safe to put inside a visibility query (no quotes, backslashes or spaces)."""
    return bool(_EMAIL.match(value))


class PendingItem(BaseModel):
    """One approval waiting on a decision: which handoff, tier, who, since and until when."""

    workflow_id: str
    type: str
    crm: str
    deal_id: str
    deal_name: str
    round: int
    tier: str
    approvers: list[str]
    asked_at: datetime
    due_at: datetime | None
    age_seconds: float
    escalated: bool
    discount_percent: float
    amount: float
    net_amount: float
    margin_percent: float
    sla_state: str
    margin_source: str = Field(default="", description="lines, cost or ratio (an estimate).")
    rule: str = Field(default="", description="For a quote rule: what it checks, in words.")
    lines: list[QuoteLine] = Field(default_factory=list, description="The quote's lines.")


def type_of(st: DealStatus) -> str:
    """The public type name of a status (its workflow type, if not registered)."""
    t = registry.for_workflow_type(st.workflow_type)
    return t.name if t else st.workflow_type


async def pending_approvals(
    client: Client, approver: str | None = None, now: datetime | None = None
) -> list[PendingItem]:
    """Approvals waiting on a decision in every type with a ladder (on `approver`'s, if
    given), oldest first. Visibility finds candidates; each one's status is the truth."""
    ladders = [t for t in registry.HANDOFF_TYPES if t.has_ladder]
    query = running_query(ladders, waiting_on=WaitingOn.DISCOUNT_APPROVAL.value)
    if approver is not None:
        approver = approver.strip().lower()
        if not valid_email(approver):
            raise ValueError(f"approver {approver!r} is not an email address")
        query += f" AND Owner = {quote(approver)}"
    now = now or datetime.now(UTC)
    items = []
    for st in await open_statuses(client, query):
        p = st.pending_approval
        if p is None or (approver is not None and approver not in p.approvers):
            continue
        items.append(
            PendingItem(
                workflow_id=st.workflow_id,
                type=type_of(st),
                crm=st.crm,
                deal_id=st.deal_id,
                deal_name=st.deal_name or st.deal_id,
                round=p.round,
                tier=p.tier,
                approvers=p.approvers,
                asked_at=p.asked_at,
                due_at=p.due_at,
                age_seconds=max((now - p.asked_at).total_seconds(), 0.0),
                escalated=p.escalated,
                discount_percent=p.discount_percent,
                amount=p.amount,
                net_amount=round(p.amount * (1 - p.discount_percent / 100), 2),
                margin_percent=p.margin_percent,
                sla_state=st.sla_state,
                margin_source=st.margin_source,
                rule=p.rule,
                lines=st.terms.lines,
            )
        )
    return sorted(items, key=lambda i: i.asked_at)
