"""`handoff policy diff OLD NEW`: who gains or loses which duty, then every setting that
changed; an unchanged policy says so, a bad file is refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from worker.cli import app
from workflows.policy import DEFAULT_POLICY_PATH, parse_policy
from workflows.policy_diff import THE_DEAL_OWNER, diff, duties


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return data


def save(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_a_new_sales_manager_gains_what_the_old_one_loses() -> None:
    """Replacing a role's person moves every duty of the role, and nothing else."""
    old = default_data()
    new = default_data()
    new["people"]["sales_manager"] = ["nina.manager@example.com"]
    change = diff(parse_policy(old), parse_policy(new))
    by_person = {p.person: p for p in change.people}
    assert set(by_person) == {"maya.manager@example.com", "nina.manager@example.com"}
    assert (
        by_person["nina.manager@example.com"].gains == by_person["maya.manager@example.com"].loses
    )
    assert "approves tier sales_manager (up to 25%)" in by_person["nina.manager@example.com"].gains
    assert [r.path for r in change.rules] == ["people.sales_manager"]


def test_a_tier_limit_change_is_a_setting_and_a_duty_change_for_its_approver() -> None:
    """Raising the VP tier's limit shows for the VP and as the setting that changed."""
    new = default_data()
    tiers = new["discounts"]["tiers"]
    vp = next(i for i, t in enumerate(tiers) if t["name"] == "vp")
    tiers[vp]["up_to_percent"] = 45
    change = diff(parse_policy(default_data()), parse_policy(new))
    victor = next(p for p in change.people if p.person == "victor.vp@example.com")
    assert victor.gains == ["approves tier vp (up to 45%)"]
    assert victor.loses == ["approves tier vp (up to 40%)"]
    assert [(r.path, r.old, r.new) for r in change.rules] == [
        (f"discounts.tiers.{vp}.up_to_percent", 40.0, 45.0)
    ]


def test_the_deal_owner_is_a_person_of_its_own() -> None:
    """`deal_owner` duties are listed for the deal owner, not for any one email."""
    owner_duties = duties(parse_policy(default_data()))[THE_DEAL_OWNER]
    assert "owns stage qualify" in owner_duties


def test_the_cli_prints_people_then_settings(tmp_path: Path) -> None:
    new = default_data()
    new["people"]["sales_manager"] = ["nina.manager@example.com"]
    old_file, new_file = save(tmp_path / "old.yaml", default_data()), save(tmp_path / "n.yaml", new)
    result = CliRunner().invoke(app, ["policy", "diff", old_file, new_file])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines.index("for whom:") < lines.index("settings:")
    assert "  nina.manager@example.com gains: approves tier sales_manager (up to 25%)" in lines
    assert "  maya.manager@example.com loses: approves tier sales_manager (up to 25%)" in lines


def test_the_cli_json_names_versions_people_and_settings(tmp_path: Path) -> None:
    new = default_data()
    new["trigger_crm_stages"] = ["new", "qualified"]
    old_file, new_file = save(tmp_path / "old.yaml", default_data()), save(tmp_path / "n.yaml", new)
    result = CliRunner().invoke(app, ["policy", "diff", old_file, new_file, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["old_version"] != body["new_version"]
    assert body["people"] == []
    assert body["rules"] == [
        {"path": "trigger_crm_stages", "old": ["new"], "new": ["new", "qualified"]}
    ]


def test_the_same_policy_in_another_layout_is_no_change(tmp_path: Path) -> None:
    data = default_data()
    a = save(tmp_path / "a.yaml", data)
    b = tmp_path / "b.yaml"
    b.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML too
    result = CliRunner().invoke(app, ["policy", "diff", a, str(b)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "no change"


def test_a_bad_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    """An invalid NEW exits 2 (bad input) with the field named, and prints no diff."""
    new = default_data()
    new["stages"]["qualify"]["owner"] = "wizard"
    old_file, new_file = save(tmp_path / "old.yaml", default_data()), save(tmp_path / "n.yaml", new)
    result = CliRunner().invoke(app, ["policy", "diff", old_file, new_file])
    assert result.exit_code == 2
    assert "unknown role 'wizard'" in result.stderr
    assert "for whom" not in result.stdout
