"""`handoff crm setup`: make the CRM ready for Handoff, or say exactly what is missing.

- HubSpot: each property Handoff needs (`worker.crm_schema`) is read through the
  properties API and created when missing (`--check` only reports); a property of the
  wrong type is reported, never changed. The private app token's scopes are read where
  HubSpot allows it (access-token-info) and compared with those Handoff needs.
- Salesforce: describe of Opportunity, Task, Order and User, as the integration user:
  every custom field present, of the right kind, writable (field-level security), keys
  as external ids, and the object permissions. It creates nothing: deploy
  `deploy/salesforce/` (SFDX source, with the `Handoff_Integration` permission set).

Exit 0 when the schema is complete, 1 when something is missing (listed), 2 for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from worker.cli.context import stack_settings
from worker.cli.render import print_table

if TYPE_CHECKING:  # the CRM client libraries load only when `crm setup` runs
    from worker.crm_schema import FieldSpec

crm_app = typer.Typer(help="Set up the CRM for Handoff.", no_args_is_help=True)

#: HubSpot property type and fieldType for each kind.
HUBSPOT_TYPES = {
    "text": ("string", "text"),
    "long_text": ("string", "textarea"),
    "email": ("string", "text"),
    "number": ("number", "number"),
    "percent": ("number", "number"),
    "currency": ("number", "number"),
    "date": ("date", "date"),
    "datetime": ("datetime", "date"),
    "boolean": ("bool", "booleancheckbox"),
}
#: The property group new properties go in, per object (HubSpot's default groups).
HUBSPOT_GROUPS = {
    "deals": "dealinformation",
    "notes": "engagement",
    "tasks": "taskinformation",
    "orders": "orderinformation",
}
#: Salesforce describe types that hold each kind.
SALESFORCE_TYPES = {
    "text": {"string"},
    "long_text": {"textarea", "string"},
    "email": {"email", "string"},
    "number": {"double", "int"},
    "percent": {"percent", "double"},
    "currency": {"currency", "double"},
    "date": {"date"},
    "datetime": {"datetime"},
    "boolean": {"boolean"},
}


@dataclass
class SetupReport:
    """One row per field, scope or permission: what it is, and its state."""

    crm: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    problems: int = 0

    def ok(self, what: str, name: str, state: str, detail: str = "") -> None:
        self.rows.append((what, name, state, detail))

    def problem(self, what: str, name: str, state: str, detail: str = "") -> None:
        self.rows.append((what, name, state, detail))
        self.problems += 1

    @property
    def complete(self) -> bool:
        return self.problems == 0

    def table(self) -> Table:
        table = Table("object", "name", "state", "detail", title=f"{self.crm} schema for Handoff")
        for what, name, state, detail in self.rows:
            colour = "green" if state in ("present", "created", "granted", "allowed") else "red"
            if state.startswith("not checked"):
                colour = "yellow"
            table.add_row(what, name, f"[{colour}]{state}[/]", detail)
        return table


# -- HubSpot -------------------------------------------------------------------------------
def hubspot_setup(host: str, token: str, specs: list[FieldSpec], *, create: bool) -> SetupReport:
    """Check (and create) the properties, then the token's scopes."""
    import httpx

    report = SetupReport("HubSpot")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=host.rstrip("/"), headers=headers, timeout=30) as http:
        for spec in specs:
            _hubspot_property(http, spec, report, create=create)
        _hubspot_scopes(http, token, report)
    return report


def _hubspot_property(http: Any, spec: FieldSpec, report: SetupReport, *, create: bool) -> None:
    kind, field_type = HUBSPOT_TYPES[spec.kind]
    path = f"/crm/v3/properties/{spec.object}"
    found = http.get(f"{path}/{spec.name}")
    if found.status_code == 200:
        have = found.json()
        if have.get("type") != kind:
            report.problem(spec.object, spec.name, "wrong type",
                           f"is {have.get('type')}, Handoff needs {kind}")  # fmt: skip
        elif spec.unique and not have.get("hasUniqueValue"):
            report.problem(spec.object, spec.name, "not unique", "needs hasUniqueValue")
        else:
            report.ok(spec.object, spec.name, "present", spec.purpose)
        return
    if found.status_code != 404:
        report.problem(spec.object, spec.name, "unreadable", _hubspot_error(found))
        return
    if not create:
        report.problem(spec.object, spec.name, "missing", f"{kind} ({field_type})")
        return
    body: dict[str, Any] = {
        "name": spec.name,
        "label": spec.name.replace("_", " ").capitalize(),
        "type": kind,
        "fieldType": field_type,
        "groupName": HUBSPOT_GROUPS[spec.object],
        "description": f"Handoff: {spec.purpose}" if spec.purpose else "Handoff",
        "hasUniqueValue": spec.unique,
    }
    if kind == "bool":
        body["options"] = [
            {"label": "Yes", "value": "true", "displayOrder": 0},
            {"label": "No", "value": "false", "displayOrder": 1},
        ]
    made = http.post(path, json=body)
    if made.status_code in (200, 201):
        report.ok(spec.object, spec.name, "created", spec.purpose)
    else:
        report.problem(spec.object, spec.name, "not created", _hubspot_error(made))


def _hubspot_scopes(http: Any, token: str, report: SetupReport) -> None:
    from worker.crm_schema import HUBSPOT_SCOPES

    info = http.post("/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": token})
    if info.status_code != 200:
        report.ok("token", "scopes", "not checked",
                  f"HubSpot did not say ({info.status_code}); see docs/crm-setup.md")  # fmt: skip
        return
    granted = set(info.json().get("scopes") or [])
    for scope in HUBSPOT_SCOPES:
        if scope in granted:
            report.ok("token", scope, "granted")
        else:
            report.problem("token", scope, "missing", "add it to the private app's scopes")


def _hubspot_error(response: Any) -> str:
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.text[:200]
    return f"HTTP {response.status_code}: {message}"


# -- Salesforce ------------------------------------------------------------------------------
def salesforce_setup(connector: Any, specs: list[FieldSpec]) -> SetupReport:
    """Describe each object as the integration user and compare with what Handoff needs."""
    from connectors.errors import CrmError
    from worker.crm_schema import SALESFORCE_OBJECT_ACCESS

    report = SetupReport("Salesforce")
    described: dict[str, dict[str, Any]] = {}
    for sobject, flags in SALESFORCE_OBJECT_ACCESS.items():
        try:
            described[sobject] = connector.describe(sobject)
        except CrmError as exc:
            report.problem(sobject, "(object)", "not visible", str(exc))
            continue
        for flag in flags:
            if described[sobject].get(flag):
                report.ok(sobject, f"({flag.removesuffix('able')})", "allowed")
            else:
                report.problem(sobject, f"({flag.removesuffix('able')})", "not allowed",
                               "give the integration user the object permission")  # fmt: skip
    for spec in specs:
        if spec.object in described:
            _salesforce_field(described[spec.object], spec, report)
    return report


def _salesforce_field(describe: dict[str, Any], spec: FieldSpec, report: SetupReport) -> None:
    fields = {f["name"]: f for f in describe.get("fields", [])}
    found = fields.get(spec.name)
    if found is None:
        hint = "deploy deploy/salesforce, or field-level security hides it"
        report.problem(spec.object, spec.name, "missing", hint)
    elif found.get("type") not in SALESFORCE_TYPES[spec.kind]:
        needs = spec.kind.replace("_", " ")
        report.problem(
            spec.object, spec.name, "wrong type", f"is {found.get('type')}, needs {needs}"
        )
    elif not (found.get("createable") and found.get("updateable")):
        report.problem(spec.object, spec.name, "read-only",
                       "grant edit access (permission set Handoff_Integration)")  # fmt: skip
    elif spec.name.endswith("Key__c") and not found.get("externalId"):
        report.problem(spec.object, spec.name, "not an external id", "mark it External ID")
    elif spec.unique and not found.get("unique"):
        report.problem(spec.object, spec.name, "not unique", "mark it Unique")
    else:
        report.ok(spec.object, spec.name, "present", spec.purpose)


# -- the command ---------------------------------------------------------------------------
@crm_app.command("setup")
def setup(
    crm: str | None = typer.Option(
        None, "--crm", help="hubspot or salesforce (default: HANDOFF_CRM)."
    ),
    check: bool = typer.Option(False, "--check", help="Report only; create nothing."),
    state_dir: Path = typer.Option(Path(".handoff"), help="Where `handoff dev` runs from."),
) -> None:
    """Create or verify the CRM fields, scopes and permissions Handoff needs."""
    from worker.crm_schema import hubspot_properties, salesforce_fields
    from worker.policy import load_configured_policy
    from worker.processes.crm import make_connector

    out = Console(soft_wrap=True)
    settings = stack_settings(crm, state_dir)
    crm = crm or settings.crm
    policy = load_configured_policy(settings)
    overrides = policy.field_mapping.get(crm, {})
    if crm == "hubspot":
        from connectors.hubspot import DEFAULT_MAPPING

        token = (settings.hubspot_token or settings.sandbox_token).get_secret_value()
        specs = hubspot_properties(DEFAULT_MAPPING.overridden(overrides))
        report = hubspot_setup(settings.hubspot_host, token, specs, create=not check)
    elif crm == "salesforce":
        from connectors.salesforce import DEFAULT_MAPPING

        connector = make_connector(settings.model_copy(update={"crm": crm}), policy)
        report = salesforce_setup(
            connector, salesforce_fields(DEFAULT_MAPPING.overridden(overrides))
        )
    else:
        Console(stderr=True).print(f"[red]--crm must be hubspot or salesforce, not {crm!r}[/]")
        raise typer.Exit(2)
    print_table(out, report.table())
    if report.complete:
        out.print(f"[green]complete[/]: {report.crm} has everything Handoff needs.")
        return
    out.print(f"[red]{report.problems} missing or wrong[/]; see docs/crm-setup.md.")
    raise typer.Exit(1)
