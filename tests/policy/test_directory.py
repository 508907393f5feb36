"""The policy's directory: `owner_manager` is the deal owner's manager, else the sales
manager; a bad entry is refused naming the field; unused, it leaves versions alone."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from workflows.policy import DEFAULT_POLICY_PATH, PolicyError, parse_policy
from workflows.policy_diff import THE_OWNERS_MANAGER, duties


def data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return loaded


def test_owner_manager_is_the_owners_manager_else_the_sales_manager() -> None:
    d = data()
    d["directory"] = {"Sam.Rep@example.com": {"manager": "Mo.Manager@example.com"}}
    d["directory"] = {k.lower(): v for k, v in d["directory"].items()}
    policy = parse_policy(d)
    assert policy.people_for("owner_manager", "sam.rep@example.com") == ["mo.manager@example.com"]
    assert policy.people_for("owner_manager", "rita.rep@example.com") == [
        "maya.manager@example.com"
    ]


def test_a_manager_that_is_not_an_email_is_refused_naming_the_field() -> None:
    d = data()
    d["directory"] = {"sam.rep@example.com": {"manager": "mo"}}
    with pytest.raises(PolicyError, match=r"directory\.sam\.rep@example\.com\.manager"):
        parse_policy(d)


def test_owner_manager_is_a_known_role_and_a_duty_of_its_own() -> None:
    d = data()
    d["stages"]["qualify"]["escalate_to"] = "owner_manager"
    policy = parse_policy(d)
    assert "is escalated to in stage qualify" in duties(policy)[THE_OWNERS_MANAGER]


def test_an_empty_directory_keeps_the_version() -> None:
    d = data()
    plain = parse_policy(d).version
    d["directory"] = {}
    assert parse_policy(d).version == plain
