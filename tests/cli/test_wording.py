"""What a person reads: roles and lists as words, no internal keys, and CLI lines that
are never broken at the terminal width (a pasted command keeps its arguments)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from activities.notify import Notice
from worker.cli.render import print_table
from worker.processes.notifiers import WebhookNotifier
from worker.wording import humane, words


@pytest.mark.parametrize(
    ("machine", "person"),
    [
        ("sales_to_ops is missing ['scope', 'start_date']",
         "sales → ops is missing scope, start date"),
        ("Accept the sales → to → ops handoff", "Accept the sales → ops handoff"),
        ("close:t0 passed its SLA; escalated to ['maya.manager@example.com']",
         "close passed its SLA; escalated to maya.manager@example.com"),
        ("approval:vp:escalated is due", "VP approval is due"),
        ("sales_manager approved", "sales manager approved"),
        ("Tier vp, round 1", "Tier VP, round 1"),
        ("stage: close → sales_to_ops", "stage: close → sales to ops"),
        ("asked of victor.vp@example.com", "asked of victor.vp@example.com"),
        ("evidence: contract_signed, payment_received",
         "evidence: contract_signed, payment_received"),
    ],
)  # fmt: skip
def test_humane_wording(machine: str, person: str) -> None:
    """Lists, keys and role names become words; emails and evidence kinds (typed back
    into `handoff evidence add`) stay as they are."""
    assert humane(machine) == person


def test_roles_read_as_words() -> None:
    """`['sales_manager', 'vp']` reads `sales manager, VP`; none reads `nobody`."""
    assert words(["sales_manager", "vp"]) == "sales manager, VP"
    assert words([]) == "nobody"


def test_a_table_keeps_ids_whole_in_a_narrow_terminal() -> None:
    """At 40 columns a 42-character workflow id is still on one line, never cut or folded."""
    out = Console(soft_wrap=True, width=40, file=io.StringIO())
    table = Table("workflow", "type")
    workflow_id = "lead-to-cash-salesforce-006Hd000000000SIAQ"
    table.add_row(workflow_id, "lead-to-cash")
    print_table(out, table)
    out.print(f"handoff status {workflow_id} --crm salesforce --json")
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert any(workflow_id in line for line in lines[:-1])
    assert lines[-1] == f"handoff status {workflow_id} --crm salesforce --json"


def test_chat_notice_reads_roles_and_no_keys() -> None:
    """A notice's subject and body reach people without role keys or Python lists."""
    notice = Notice(
        to=["victor.vp@example.com"],
        subject="[reminder] close:t0 is due",
        body="Tier vp, round 1; asked ['sales_manager', 'vp']",
        crm="hubspot",
        deal_id="1001",
        workflow_id="lead-to-cash-hubspot-1001",
    )
    text = str(WebhookNotifier("http://127.0.0.1:9/hook").payload(notice)["text"])
    assert "*[reminder] close is due*" in text
    assert "Tier VP, round 1; asked sales manager, VP" in text
    assert "['" not in text and ":t0" not in text
