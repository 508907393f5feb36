"""Deal ids are checked against their CRM's id shape before any workflow or CRM call.

A deal id becomes part of a workflow id (`lead-to-cash-<crm>-<deal id>`) and of a CRM
URL, so an unchecked one lets an attacker aim at another workflow (`…-approval-r1`) or
another CRM object (`../`). Every surface checks it where it enters: API paths and web
pages (a router dependency, `worker.http.deps.valid_deal_path`, 422), signed links, CLI
arguments (exit 2) and webhooks. No web framework is imported here: the CLI imports this.
The message names the field and the allowed shape, never the value that was sent.
"""

from __future__ import annotations

import re
from typing import NoReturn

#: The id shape of each CRM, and how to say it.
SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "hubspot": (re.compile(r"[0-9]{1,20}"), "1 to 20 digits"),
    "salesforce": (
        re.compile(r"[A-Za-z0-9]{15}|[A-Za-z0-9]{18}"),
        "15 or 18 letters and digits",
    ),
    "memory": (re.compile(r"[A-Za-z0-9_-]{1,64}"), "1 to 64 letters, digits, '_' or '-'"),
}
#: Suffixes of workflow ids Handoff derives from a deal's; a deal id may not end so.
RESERVED_SUFFIX = re.compile(r"-approval-r[0-9]+$")


class InvalidDealId(ValueError):
    """A deal id (or CRM name) that does not have the shape its CRM gives ids."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def check_deal_id(crm: str, deal_id: str) -> None:
    """Raise `InvalidDealId` unless `deal_id` has `crm`'s id shape."""
    shape = SHAPES.get(crm)
    if shape is None:
        raise InvalidDealId("crm", f"must be one of {', '.join(SHAPES)}")
    pattern, said = shape
    if not pattern.fullmatch(deal_id) or RESERVED_SUFFIX.search(deal_id):
        raise InvalidDealId("deal_id", f"a {crm} deal id is {said}")


def is_valid_deal_id(crm: str, deal_id: str) -> bool:
    try:
        check_deal_id(crm, deal_id)
    except InvalidDealId:
        return False
    return True


def check_cli_deal_id(crm: str, deal_id: str) -> None:
    """For the CLI: print the field and the allowed shape and exit 2 on a bad deal id."""
    try:
        check_deal_id(crm, deal_id)
    except InvalidDealId as exc:
        _exit_2(f"Invalid {exc.field}: {exc.reason}.")


def _exit_2(message: str) -> NoReturn:
    import typer
    from rich.console import Console

    Console(stderr=True).print(f"[red]{message}[/]", markup=True, highlight=False)
    raise typer.Exit(2)
