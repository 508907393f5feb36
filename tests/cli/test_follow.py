"""A command in a second terminal follows the running `handoff dev` stack, unless the
user named another CRM or Temporal (a flag, the environment or `.env`)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from worker.cli.follow import follow_running_stack
from worker.stack_file import RunningStack, write_running

STACK_ENV = {
    "TEMPORAL_ADDRESS": "127.0.0.1:7343",
    "HANDOFF_CRM": "salesforce",
    "HANDOFF_TASK_QUEUE": "handoff-dev-tq",
    "HANDOFF_PUBLIC_URL": "http://127.0.0.1:8190",
}


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A running Salesforce stack (this process stands for `handoff dev`), and a terminal
    with no HANDOFF_ or TEMPORAL_ settings, in a folder with no `.env`. The environment
    the follow fills in is restored afterwards."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("HANDOFF_", "TEMPORAL_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    base = tmp_path / ".handoff"
    base.mkdir()
    write_running(
        base,
        RunningStack(crm="salesforce", state_dir=str(base / "salesforce"), pid=os.getpid(),
                     api_url="http://127.0.0.1:8190", env=STACK_ENV),
    )  # fmt: skip
    yield base
    os.environ.clear()
    os.environ.update(saved)


def follow(base: Path, crm: str | None = None) -> tuple[bool, str]:
    said = io.StringIO()
    stack = follow_running_stack(crm, Console(file=said, width=200), base)
    return stack is not None, said.getvalue()


def test_unset_settings_come_from_the_running_stack(base: Path) -> None:
    """CRM, Temporal address, task queue and API address are the stack's, and it says so."""
    followed, said = follow(base)
    assert followed and "Using the running dev stack: salesforce" in said
    assert {k: os.environ[k] for k in STACK_ENV} == STACK_ENV


def test_a_setting_the_user_gave_is_kept(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task queue set in the environment stays; the rest still comes from the stack."""
    monkeypatch.setenv("HANDOFF_TASK_QUEUE", "mine")
    assert follow(base)[0]
    assert os.environ["HANDOFF_TASK_QUEUE"] == "mine"
    assert os.environ["HANDOFF_CRM"] == "salesforce"


@pytest.mark.parametrize(
    ("flag", "env", "dotenv"),
    [
        ("hubspot", {}, ""),
        (None, {"HANDOFF_CRM": "hubspot"}, ""),
        (None, {"TEMPORAL_ADDRESS": "temporal.example:7233"}, ""),
        (None, {}, "HANDOFF_CRM=hubspot\n"),
    ],
    ids=["crm-flag", "crm-env", "temporal-env", "crm-dotenv"],
)
def test_naming_another_stack_takes_nothing_from_the_file(
    base: Path, monkeypatch: pytest.MonkeyPatch, flag: str | None, env: dict[str, str],
    dotenv: str,
) -> None:  # fmt: skip
    """--crm, HANDOFF_CRM or TEMPORAL_ADDRESS (environment or .env) naming another stack:
    no setting is taken from the running one, and the user is told."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (base.parent / ".env").write_text(dotenv, encoding="utf-8")
    followed, said = follow(base, flag)
    assert not followed and "using your settings" in said
    assert "HANDOFF_TASK_QUEUE" not in os.environ and "HANDOFF_PUBLIC_URL" not in os.environ


def test_the_same_stack_named_explicitly_is_followed(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--crm salesforce and the stack's own Temporal address are that stack: followed."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", STACK_ENV["TEMPORAL_ADDRESS"])
    assert follow(base, "salesforce")[0]
    assert os.environ["HANDOFF_TASK_QUEUE"] == "handoff-dev-tq"


def test_no_stack_or_a_stopped_one_changes_nothing(base: Path) -> None:
    """A stack file whose process is gone is ignored: the defaults stand."""
    stopped = RunningStack(
        crm="salesforce", state_dir="x", pid=2**22 + 1, api_url="", env=STACK_ENV
    )
    write_running(base, stopped)
    assert follow(base) == (False, "")
    assert "HANDOFF_CRM" not in os.environ
