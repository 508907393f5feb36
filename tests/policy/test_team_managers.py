"""The policy's `team_managers` (who manages each CRM team, for HubSpot owners): the
CRM's word wins over the directory, a bad entry is refused naming the field, and an
empty map leaves the policy version alone."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from workflows.policy import DEFAULT_POLICY_PATH, PolicyError, parse_policy


def data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return loaded


def test_the_crm_manager_wins_over_the_directory_and_the_sales_manager() -> None:
    """`owner_manager` is the CRM's manager when there is one, else the directory's."""
    d = data()
    d["directory"] = {"sam.rep@example.com": {"manager": "mo.manager@example.com"}}
    policy = parse_policy(d)
    owner = "sam.rep@example.com"
    assert policy.people_for("owner_manager", owner, "cora@example.com") == ["cora@example.com"]
    assert policy.people_for("owner_manager", owner, None) == ["mo.manager@example.com"]
    assert policy.people_for("sales_manager", owner, "cora@example.com") == [
        "maya.manager@example.com"
    ]  # only owner_manager follows the CRM


def test_team_managers_are_emails_lower_cased() -> None:
    d = data()
    d["team_managers"] = {"Sales East": "Maya.Manager@Example.com"}
    assert parse_policy(d).team_managers == {"Sales East": "maya.manager@example.com"}


def test_a_team_manager_that_is_not_an_email_is_refused_naming_the_field() -> None:
    d = data()
    d["team_managers"] = {"Sales East": "maya"}
    with pytest.raises(PolicyError, match=r"team_managers\.Sales East"):
        parse_policy(d)


def test_an_empty_team_managers_map_keeps_the_version() -> None:
    d = data()
    plain = parse_policy(d).version
    d["team_managers"] = {}
    assert parse_policy(d).version == plain
    d["team_managers"] = {"Sales East": "maya.manager@example.com"}
    assert parse_policy(d).version != plain
