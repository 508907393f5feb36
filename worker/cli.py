"""`handoff`: the command line for ops, managers and engineers.

Deal commands go through the workflows' validated updates, so a refusal is printed at
once with its reason (exit code 1). An unknown deal exits with 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from worker.ids import check_cli_deal_id
from worker.settings import Settings
from workflows import names
from workflows.messages import DealStatus, Receipt
from workflows.names import Msg
from workflows.policy import PolicyError, load_policy

app = typer.Typer(
    help="Handoff: durable lead-to-cash handoffs beside your CRM.", no_args_is_help=True
)
deal_app = typer.Typer(help="Start handoffs.", no_args_is_help=True)
evidence_app = typer.Typer(help="Record evidence.", no_args_is_help=True)
exception_app = typer.Typer(help="Raise and resolve exceptions.", no_args_is_help=True)
policy_app = typer.Typer(help="Check policy files.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Run a CRM sandbox on its own.", no_args_is_help=True)
renewal_app = typer.Typer(help="Renewals and expansions.", no_args_is_help=True)
app.add_typer(deal_app, name="deal")
app.add_typer(renewal_app, name="renewal")
app.add_typer(evidence_app, name="evidence")
app.add_typer(exception_app, name="exception")
app.add_typer(policy_app, name="policy")
app.add_typer(sandbox_app, name="sandbox")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

CrmOpt = typer.Option(None, "--crm", help="hubspot, salesforce or memory (default: HANDOFF_CRM).")


def _settings() -> Settings:
    """The settings, or a one-line-per-field message and exit 2 (never a traceback, whose
    locals could show secrets)."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        err.print("[red]Invalid configuration[/]:")
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(settings)"
            err.print(f"  {where}: {e['msg']}", markup=False)
        raise typer.Exit(2) from None


def _run(fn: Callable[[Client, Settings], Awaitable[T]]) -> T:
    """Connect to Temporal and run one command, turning known failures into messages."""
    settings = _settings()

    async def main() -> T:
        from worker.temporal import connect

        try:
            client = await connect(settings)
        except RuntimeError as exc:
            err.print(f"[red]Cannot reach Temporal at {settings.temporal_address}[/]: {exc}")
            err.print("Is `handoff dev` running? Set TEMPORAL_ADDRESS for another cluster.")
            raise typer.Exit(3) from None
        return await fn(client, settings)

    return asyncio.run(main())


def _crm(settings: Settings, crm: str | None) -> str:
    return crm or settings.crm


async def _update(
    client: Client,
    settings: Settings,
    crm: str | None,
    deal_id: str,
    name: str,
    payload: dict[str, Any],
) -> Receipt:
    """Send one validated update; print the refusal and exit 1 if refused."""
    wf_id = names.lead_to_cash_id(_crm(settings, crm), deal_id)
    handle = client.get_workflow_handle(wf_id)
    try:
        receipt: Receipt = await handle.execute_update(name, payload, result_type=Receipt)
        return receipt
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        err.print(f"[red]Refused[/]: {reason}")
        raise typer.Exit(1) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            err.print(f"[red]No running handoff for deal {deal_id}[/] (workflow {wf_id}).")
            err.print("Start it with: handoff deal start " + deal_id)
            raise typer.Exit(2) from None
        err.print(f"[red]Temporal could not answer for {wf_id}[/]: {exc.message}")
        raise typer.Exit(3) from None


def _send(crm: str | None, deal_id: str, name: str, payload: dict[str, Any]) -> None:
    check_cli_deal_id(crm or _settings().crm, deal_id)
    receipt = _run(lambda c, s: _update(c, s, crm, deal_id, name, payload))
    out.print(
        f"[green]OK[/] {receipt.detail}  (stage {receipt.stage}, waiting on {receipt.waiting_on})"
    )


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- processes ---------------------------------------------------------------------------
@app.command()
def dev(
    state_dir: Path = typer.Option(Path(".handoff"), help="SQLite files and the sandbox CA."),
    crm: str = typer.Option("hubspot", help="CRM to run against: hubspot, salesforce, memory."),
    temporal_port: int = typer.Option(7233),
    ui_port: int = typer.Option(8233),
    api_port: int = typer.Option(8080),
    sandbox_port: int | None = typer.Option(None, help="Default 8091 HubSpot, 8092 Salesforce."),
    sandbox_token: str = typer.Option("handoff-sandbox", help="Bearer token the sandbox accepts."),
) -> None:
    """Run the embedded stack: Temporal dev server, CRM sandbox, worker and API."""
    from worker.dev import DevStack

    if crm not in ("hubspot", "salesforce", "memory"):
        err.print(f"[red]--crm must be hubspot, salesforce or memory, not {crm!r}[/]")
        raise typer.Exit(2)
    stack = DevStack(
        state_dir=state_dir,
        crm=crm,
        temporal_port=temporal_port,
        ui_port=ui_port,
        api_port=api_port,
        sandbox_port=sandbox_port,
        sandbox_token=sandbox_token,
    )
    raise typer.Exit(stack.run())


@app.command()
def worker() -> None:
    """Run a worker (configured by TEMPORAL_* and HANDOFF_* environment variables)."""
    from worker.logging import configure_logging
    from worker.main import run_worker

    settings = _settings()
    configure_logging(settings.environment)
    asyncio.run(run_worker(settings))


@app.command()
def api() -> None:
    """Run the HTTP API, web inbox and webhook ingress."""
    from worker.api import run_api
    from worker.logging import configure_logging

    settings = _settings()
    configure_logging(settings.environment)
    asyncio.run(run_api(settings))


@sandbox_app.command("hubspot")
def sandbox_hubspot(
    port: int = typer.Option(8091),
    state_dir: Path = typer.Option(Path(".handoff")),
    token: str = typer.Option("handoff-sandbox", "--sandbox-token"),
) -> None:
    """Serve the HubSpot CRM v3 sandbox."""
    from sandbox.hubspot import run

    run(port=port, state_dir=state_dir, token=token)


@sandbox_app.command("salesforce")
def sandbox_salesforce(
    port: int = typer.Option(8092),
    state_dir: Path = typer.Option(Path(".handoff")),
    token: str = typer.Option("handoff-sandbox", "--sandbox-token"),
) -> None:
    """Serve the Salesforce REST sandbox (HTTPS; CA in <state-dir>/sandbox-ca.pem)."""
    from sandbox.salesforce import run

    run(port=port, state_dir=state_dir, token=token)


# -- deals -------------------------------------------------------------------------------
@deal_app.command("start")
def deal_start(deal_id: str, crm: str | None = CrmOpt) -> None:
    """Start a deal's handoff. Starting it again is a no-op."""
    check_cli_deal_id(crm or _settings().crm, deal_id)
    from worker.policy import load_configured_policy
    from worker.starter import start_lead_to_cash

    async def go(client: Client, s: Settings) -> None:
        handle, started = await start_lead_to_cash(
            client,
            crm=_crm(s, crm),
            deal_id=deal_id,
            policy=load_configured_policy(s),
            task_queue=s.task_queue,
        )
        verb = "Started" if started else "Already started"
        out.print(f"[green]{verb}[/] {handle.id}")

    _run(go)


@renewal_app.command("start")
def renewal_start(deal_id: str, crm: str | None = CrmOpt) -> None:
    """Start a deal's renewal; after a closed lead-to-cash it carries its context."""
    check_cli_deal_id(crm or _settings().crm, deal_id)
    from worker.policy import load_configured_policy
    from worker.renewals import start_renewal

    async def go(client: Client, s: Settings) -> None:
        handle, started = await start_renewal(
            client,
            crm=_crm(s, crm),
            deal_id=deal_id,
            policy=load_configured_policy(s),
            task_queue=s.task_queue,
        )
        out.print(f"[green]{'Started' if started else 'Already started'}[/] {handle.id}")

    _run(go)


@evidence_app.command("add")
def evidence_add(
    deal_id: str,
    kind: str,
    by: str = typer.Option(..., help="Who gives the evidence (email)."),
    ref: str | None = typer.Option(None, help="Where it comes from (URL, document id)."),
    note: str | None = typer.Option(None),
    crm: str | None = CrmOpt,
) -> None:
    """Record typed evidence (budget_confirmed, contract_signed, ...)."""
    _send(crm, deal_id, Msg.ADD_EVIDENCE, _drop_none(kind=kind, by=by, ref=ref, note=note))


@app.command()
def approve(
    deal_id: str,
    as_: str = typer.Option(..., "--as", help="Approver email."),
    reason: str = typer.Option(..., help="Why (required)."),
    crm: str | None = CrmOpt,
) -> None:
    """Approve the pending discount tier."""
    _send(crm, deal_id, Msg.APPROVE, {"approver": as_, "reason": reason})


@app.command()
def reject(
    deal_id: str,
    as_: str = typer.Option(..., "--as", help="Approver email."),
    reason: str = typer.Option(..., help="Why (required)."),
    crm: str | None = CrmOpt,
) -> None:
    """Reject the pending discount tier."""
    _send(crm, deal_id, Msg.REJECT, {"approver": as_, "reason": reason})


@app.command()
def delegate(
    deal_id: str,
    as_: str = typer.Option(..., "--as", help="Approver email."),
    to: str = typer.Option(..., help="Delegate email."),
    reason: str = typer.Option(...),
    crm: str | None = CrmOpt,
) -> None:
    """Hand your pending approval to a named delegate."""
    _send(crm, deal_id, Msg.DELEGATE, {"approver": as_, "delegate": to, "reason": reason})


@app.command()
def recall(
    deal_id: str,
    by: str = typer.Option(..., help="Deal owner email."),
    reason: str = typer.Option(...),
    crm: str | None = CrmOpt,
) -> None:
    """Withdraw the approval request (deal owner only)."""
    _send(crm, deal_id, Msg.RECALL, {"by": by, "reason": reason})


@app.command()
def terms(
    deal_id: str,
    by: str = typer.Option(...),
    discount: float | None = typer.Option(None, help="New discount in percent (0-100)."),
    amount: float | None = typer.Option(None, help="New list amount."),
    crm: str | None = CrmOpt,
) -> None:
    """Change the terms; only approvals they affect are asked again."""
    _send(
        crm, deal_id, Msg.UPDATE_TERMS, _drop_none(by=by, discount_percent=discount, amount=amount)
    )


@exception_app.command("raise")
def exception_raise(
    deal_id: str,
    kind: str,
    by: str = typer.Option(...),
    note: str = typer.Option(...),
    crm: str | None = CrmOpt,
) -> None:
    """Raise an exception (scope_change, credit_hold, legal_review, ...): pauses the clock."""
    _send(crm, deal_id, Msg.RAISE_EXCEPTION, {"kind": kind, "by": by, "note": note})


@exception_app.command("resolve")
def exception_resolve(
    deal_id: str,
    kind: str,
    by: str = typer.Option(...),
    note: str = typer.Option(...),
    crm: str | None = CrmOpt,
) -> None:
    """Resolve an open exception: the clock resumes."""
    _send(crm, deal_id, Msg.RESOLVE_EXCEPTION, {"kind": kind, "by": by, "note": note})


@app.command()
def accept(deal_id: str, team: str, by: str = typer.Option(...), crm: str | None = CrmOpt) -> None:
    """Accept a handoff for your team (operations, billing)."""
    _send(crm, deal_id, Msg.ACCEPT_HANDOFF, {"team": team, "by": by})


async def _status(client: Client, crm: str, deal_id: str) -> DealStatus:
    wf_id = names.lead_to_cash_id(crm, deal_id)
    try:
        status: DealStatus = await client.get_workflow_handle(wf_id).query(
            names.QUERY_STATUS, result_type=DealStatus
        )
        return status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            err.print(f"[red]No handoff for deal {deal_id}[/] (workflow {wf_id}).")
            raise typer.Exit(2) from None
        err.print(f"[red]Temporal could not answer for {wf_id}[/]: {exc.message}")
        raise typer.Exit(3) from None


@app.command()
def status(
    deal_id: str,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable."),
    crm: str | None = CrmOpt,
) -> None:
    """What the handoff waits on, from whom, since and until when."""
    check_cli_deal_id(crm or _settings().crm, deal_id)
    st = _run(lambda c, s: _status(c, _crm(s, crm), deal_id))
    if as_json:
        out.print_json(st.model_dump_json())
        return
    from worker.render import render_status

    render_status(out, st)


@app.command("list")
def list_(
    waiting_on: str | None = typer.Option(None, help="e.g. discount_approval, evidence."),
    stage: str | None = typer.Option(None),
    owner: str | None = typer.Option(None),
    crm: str | None = CrmOpt,
) -> None:
    """Open handoffs, filtered with search attributes."""
    from worker.render import list_query

    query = list_query(waiting_on=waiting_on, stage=stage, owner=owner, crm=crm)

    async def go(client: Client, s: Settings) -> None:
        table = Table("workflow", "stage", "waiting on", "owner", "due")
        async for wf in client.list_workflows(query):
            sa = wf.typed_search_attributes
            due = sa.get(names.DUE_AT)
            table.add_row(
                wf.id,
                sa.get(names.STAGE) or "",
                sa.get(names.WAITING_ON) or "",
                ", ".join(sa.get(names.OWNER) or []),
                f"{due:%Y-%m-%d %H:%M}" if due else "",
            )
        out.print(table)

    _run(go)


@app.command()
def stuck(crm: str | None = CrmOpt) -> None:
    """Why deals are stuck: open handoffs by what they wait on, oldest first."""
    from worker.board import render_text, stall_board

    async def go(client: Client, s: Settings) -> None:
        out.print(render_text(await stall_board(client)))

    _run(go)


@app.command()
def demo(crm: str | None = CrmOpt) -> None:
    """Start a sample deal and walk it to the discount-approval wait."""
    from worker.demo import run_demo

    _run(lambda c, s: run_demo(c, s, _crm(s, crm), out))


@policy_app.command("check")
def policy_check(path: Path) -> None:
    """Validate a policy file and print its version."""
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    out.print(f"[green]valid[/] {path}: version {policy.version}")
    out.print(json.dumps({"tiers": [t.name for t in policy.discounts.tiers]}))


# -- engineers and ops -------------------------------------------------------------------
@app.command()
def new(name: str = typer.Argument(..., help="snake_case name of the new handoff.")) -> None:
    """Scaffold a new handoff workflow: its module, policy section, tests and replay slot."""
    from worker.scaffold import ScaffoldError, scaffold

    try:
        created = scaffold(name, Path.cwd())
    except ScaffoldError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for path in created:
        out.print(f"created {path}")


@app.command("keys")
def keys(action: str = typer.Argument("new", help="`new`: print a new key entry.")) -> None:
    """Print a new AES-256 key for HANDOFF_ENCRYPTION_KEYS (put it first to rotate)."""
    from worker.codec import generate_key, new_key_id

    if action != "new":
        err.print(f"[red]unknown action {action!r}; allowed: new[/]")
        raise typer.Exit(2)
    out.print(json.dumps({new_key_id(): generate_key()}))


@app.command("codec-server")
def codec_server(port: int = typer.Option(8888, help="Port for the Temporal UI to call.")) -> None:
    """Serve the payload codec so the Temporal UI and CLI can show decrypted payloads."""
    from worker.codec_server import run_codec_server

    run_codec_server(_settings(), port=port)


@app.command()
def bench(
    handoffs: int = typer.Option(200, "--handoffs", min=1, help="Completed handoffs to run."),
    parked: int = typer.Option(1000, "--parked", min=0, help="Handoffs left parked on approval."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the figures here."),
    temporal_address: str | None = typer.Option(
        None, "--temporal-address", help="Your cluster; default: an embedded dev server."
    ),
) -> None:
    """Measure what one worker carries: throughput vs bare Temporal, latency, memory."""
    from worker.bench import run_bench

    raise typer.Exit(
        run_bench(
            handoffs=handoffs,
            parked=parked,
            json_path=json_path,
            temporal_address=temporal_address,
            out=out,
        )
    )


def main() -> None:
    """The `handoff` entry point.

    It ends the process with `os._exit` once the command is done and its output flushed:
    the Temporal client's Rust threads can abort CPython's finalisation with "PyGILState_
    Release: thread state must be current" (temporalio/sdk-python#300), which would turn a
    successful command into a crash.
    """
    code: int = 0
    try:
        app(prog_name="handoff")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):  # SystemExit("why"): a one-line refusal, say it
            print(exc.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
