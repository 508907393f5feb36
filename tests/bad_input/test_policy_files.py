"""Bad policy files fail at load with a message naming the field; `handoff policy check`
prints it and exits 1."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from worker.cli import app
from workflows.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[leaf] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = data
        for p in parents:
            node = node[p]
        del node[leaf]

    return mutate


def _swap_tiers(data: dict[str, Any]) -> None:
    tiers = data["discounts"]["tiers"]
    tiers[1], tiers[2] = tiers[2], tiers[1]


# (case, mutation of the default policy, fragments the error must contain)
BAD: list[tuple[str, Mutation, list[str]]] = [
    ("unknown role", _set("stages.qualify.owner", "wizard"),
     ["stages.qualify.owner: unknown role 'wizard'"]),
    ("unknown approver role", _set("discounts.tiers.1.approvers", ["overlord"]),
     ["discounts.tiers.1.approvers: unknown role 'overlord'"]),
    ("tiers not ascending", _swap_tiers, ["discounts", "strictly ascending up_to_percent"]),
    ("last tier not 100", _set("discounts.tiers.3.up_to_percent", 90),
     ["discounts", "the last tier must go up_to_percent: 100"]),
    ("tier over 100", _set("discounts.tiers.3.up_to_percent", 250),
     ["discounts.tiers.3.up_to_percent", "less than or equal to 100"]),
    ("unknown evidence kind", _set("stages.close.evidence", ["vibes"]),
     ["stages.close.evidence: unknown kind 'vibes'"]),
    ("bad duration", _set("stages.qualify.sla", "7 fortnights"), ["stages.qualify.sla"]),
    ("reminder after due", _set("stages.qualify.remind_before", "30d"),
     ["stages.qualify", "remind_before must be shorter than sla"]),
    ("person not an email", _set("people.sales_manager", ["maya"]),
     ["people.sales_manager: 'maya' is not an email address"]),
    ("tier reminder after its deadline", _set("discounts.tiers.1.remind_before", "2d"),
     ["discounts.tiers.1.remind_before", "is not before its deadline"]),
    ("evidence recorded by an unknown role", _set("evidence.payment_received.recorded_by", ["rep"]),
     ["evidence.payment_received.recorded_by: unknown role 'rep'"]),
    ("evidence from an unknown stage", _set("evidence.payment_received.from_stage", "never"),
     ["evidence.payment_received.from_stage: unknown stage 'never'"]),
    ("missing section", _delete("discounts"), ["discounts: Field required"]),
    ("missing stage", _delete("stages.cash"), ["stages: missing stage 'cash'"]),
    ("missing required exception", _delete("exceptions.crm_write_failed"),
     ["exceptions: missing kind 'crm_write_failed'"]),
    ("unknown field", _set("colour", "teal"), ["colour: Extra inputs are not permitted"]),
    ("wrong type", _set("payment_terms.days", "thirty"),
     ["payment_terms.days", "valid integer"]),
]  # fmt: skip


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("case", "mutate", "fragments"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_policy_file_fails_at_load_naming_the_field(
    tmp_path: Path, case: str, mutate: Mutation, fragments: list[str]
) -> None:
    """Each broken policy raises PolicyError whose message names the field and the rule."""
    data = copy.deepcopy(default_data())
    mutate(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path} is invalid"), message
    for fragment in fragments:
        assert fragment in message, (case, fragment, message)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("people: [unclosed\n  - x: {", "is not valid YAML"),
        ("- just\n- a list\n", "Input should be a valid dictionary"),
        ("", "Input should be a valid dictionary"),
    ],
    ids=["not yaml", "a list", "empty"],
)
def test_a_file_that_is_not_a_policy_mapping_fails_clearly(
    tmp_path: Path, text: str, fragment: str
) -> None:
    """Not YAML, a list, or nothing at all: PolicyError saying so, never a raw traceback."""
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=fragment):
        load_policy(path)


def test_policy_check_prints_the_problem_and_exits_1(tmp_path: Path) -> None:
    """`handoff policy check` on a bad file names the field on stderr and exits 1."""
    data = default_data()
    data["stages"]["qualify"]["owner"] = "wizard"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert "unknown role 'wizard'" in result.stderr
    assert "valid" not in result.stdout


def test_policy_check_on_a_missing_file_exits_1_naming_it(tmp_path: Path) -> None:
    """A path that does not exist is reported as unreadable, with exit code 1."""
    result = CliRunner().invoke(app, ["policy", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "cannot read policy file" in result.stderr


def test_policy_check_prints_who_may_do_what(tmp_path: Path) -> None:
    """The duty rules in words: who records each evidence kind, raises and resolves each
    exception, and approves each tier; a kind anyone may record is warned about."""
    data = yaml.safe_load(Path("deploy/policy.example.yaml").read_text())
    data["evidence"]["need_confirmed"] = "The need is confirmed"  # the old, open form
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    payment = (
        "evidence payment_received: recorded by billing, collections, crm, from ops_to_billing on"
    )
    assert payment in lines
    assert any(
        line.startswith("exception cancellation: raised by") and "holds the stage" in line
        for line in lines
    )
    assert "warning: evidence need_confirmed may be recorded by anyone (no recorded_by)" in lines
