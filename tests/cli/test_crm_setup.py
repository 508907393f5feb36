"""`handoff crm setup` against both sandboxes: a complete schema there, missing or wrong
fields named (and created on HubSpot), and the shipped SFDX folder and docs in step."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.hubspot import TOKEN, running_sandbox
from support.processes import HANDOFF
from support.salesforce import auth_for, connector_for
from support.salesforce import running_sandbox as running_salesforce

from connectors.hubspot import DEFAULT_MAPPING as HUBSPOT
from connectors.salesforce import DEFAULT_MAPPING as SALESFORCE
from worker.cli.crm_setup import hubspot_setup, salesforce_setup
from worker.crm_schema import HUBSPOT_SCOPES, hubspot_properties, salesforce_fields
from worker.sfdx import project_files

ROOT = Path(__file__).parents[2]


def setup_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    return subprocess.run(
        [HANDOFF, "crm", "setup", *args],
        env={**clean, "COLUMNS": "80", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_hubspot_sandbox_reports_a_complete_schema_through_the_cli() -> None:
    """Every property and scope Handoff needs is there on a fresh HubSpot sandbox."""
    with running_sandbox() as sandbox:
        result = setup_cli(
            "--crm", "hubspot", "--check",
            HANDOFF_HUBSPOT_HOST=sandbox.base, HANDOFF_HUBSPOT_TOKEN=TOKEN,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "complete: HubSpot has everything Handoff needs." in result.stdout
    for scope in HUBSPOT_SCOPES:
        assert scope in result.stdout


def test_hubspot_setup_creates_what_is_missing_and_names_a_wrong_type() -> None:
    """A renamed field is missing, then created, then present; a property of another
    type is reported and left as it is."""
    specs = hubspot_properties(HUBSPOT.overridden({"cost": "acme_cost", "scope": "hs_object_id"}))
    with running_sandbox() as sandbox:
        checked = hubspot_setup(sandbox.base, TOKEN, specs, create=False)
        created = hubspot_setup(sandbox.base, TOKEN, specs, create=True)
        again = hubspot_setup(sandbox.base, TOKEN, specs, create=False)
        made = sandbox.api("GET", "/crm/v3/properties/deals/acme_cost").json()
    assert ("deals", "acme_cost", "missing", "number (number)") in checked.rows
    assert ("deals", "acme_cost", "created", "cost") in created.rows
    assert made["type"] == "number" and made["groupName"] == "dealinformation"
    wrong = [r for r in again.rows if r[1] == "hs_object_id"]
    assert wrong == [("deals", "hs_object_id", "wrong type", "is number, Handoff needs string")]
    assert again.problems == 1


def test_salesforce_sandbox_reports_complete_fields_and_permissions(tmp_path: Path) -> None:
    """The integration user sees and may write every field; the objects allow it."""
    with running_salesforce(tmp_path) as sandbox:
        result = setup_cli(
            "--crm", "salesforce",
            HANDOFF_SALESFORCE_LOGIN_HOST=sandbox.host,
            HANDOFF_SALESFORCE_CA_FILE=str(sandbox.ca_pem),
            HANDOFF_SALESFORCE_DOMAIN="handoff-sandbox.my",
            HANDOFF_SALESFORCE_CONSUMER_KEY="handoff-sandbox-consumer",
            HANDOFF_SALESFORCE_CONSUMER_SECRET="handoff-sandbox-secret",
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "complete: Salesforce has everything Handoff needs." in result.stdout
    for spec in salesforce_fields():
        assert spec.name in result.stdout


def test_salesforce_setup_names_a_missing_field(tmp_path: Path) -> None:
    """A field the org lacks is listed as missing, with what to deploy."""
    specs = salesforce_fields(SALESFORCE.overridden({"scope": "Acme_Scope__c"}))
    with running_salesforce(tmp_path) as sandbox:
        report = salesforce_setup(
            connector_for(sandbox, auth_for(sandbox, "client_credentials")), specs
        )
    missing = [r for r in report.rows if r[2] != "present" and r[2] != "allowed"]
    assert [(r[0], r[1], r[2]) for r in missing] == [("Opportunity", "Acme_Scope__c", "missing")]
    assert "deploy/salesforce" in missing[0][3]


def test_the_sfdx_folder_is_what_the_schema_generates() -> None:
    """deploy/salesforce holds exactly the generated fields and permission set."""
    folder = ROOT / "deploy" / "salesforce"
    expected = project_files()
    on_disk = {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8")
        for p in folder.rglob("*")
        if p.is_file()
    }
    assert on_disk == expected, "regenerate: python -m worker.sfdx deploy/salesforce"
    assert "objects/Activity/fields/Handoff_Key__c.field-meta.xml" in " ".join(expected)


def test_crm_setup_doc_lists_every_field_and_scope() -> None:
    """docs/crm-setup.md names every property, field, scope and the permission set."""
    doc = (ROOT / "docs" / "crm-setup.md").read_text(encoding="utf-8")
    for spec in [*hubspot_properties(), *salesforce_fields()]:
        assert f"`{spec.name}`" in doc, spec.name
    for scope in HUBSPOT_SCOPES:
        assert f"`{scope}`" in doc, scope
    assert "Handoff_Integration" in doc
