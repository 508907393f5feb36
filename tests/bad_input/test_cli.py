"""Bad `handoff` CLI arguments: each exits with the code of its typed refusal
(`worker.cli.exit_codes`): usage errors and invalid payloads 2, not authorised 4, an
unknown handoff 5, with a clear message on stderr, and the handoff's status unchanged."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.api import MANAGER, OPS, OWNER, deal_at_tier, make_settings, same_state
from support.handoffs import deal_id_of, status
from support.processes import run_handoff as handoff
from temporalio.testing import WorkflowEnvironment

from workflows import registry

pytestmark = pytest.mark.integration

# (arguments after the deal id placeholder, exit code, fragments of the message)
CASES: list[tuple[list[str], int, list[str]]] = [
    (["terms", "{deal}", "--by", OWNER, "--discount", "lots"], 2,
     ["Invalid value for '--discount'", "valid number"]),
    (["terms", "{deal}", "--by", OWNER, "--discount", "250"], 2,
     ["Refused (invalid)", "discount_percent", "less than or equal to 100"]),
    (["terms", "{deal}", "--by", OWNER, "--discount", "-5"], 2,
     ["Refused (invalid)", "discount_percent", "greater than or equal to 0"]),
    (["terms", "{deal}", "--by", OWNER], 2,
     ["Refused (invalid)", "give discount_percent and/or amount"]),
    (["approve", "{deal}", "--as", MANAGER], 2, ["Missing option '--reason'"]),
    (["accept", "{deal}", "operations", "--by", OPS], 1,
     ["Refused (not_pending)", "no handoff is waiting for acceptance"]),
    (["approve", "{deal}", "--as", MANAGER, "--reason", ""], 2,
     ["Refused (invalid)", "reason: String should have at least 1 character"]),
    (["approve", "{deal}", "--as", "mallory@example.com", "--reason", "trust me"], 4,
     ["Refused (not_authorised)", "mallory@example.com is not an approver of the sales_manager"]),
    (["evidence", "add", "{deal}", "telepathy", "--by", OWNER], 2,
     ["Refused (invalid)", "unknown evidence kind 'telepathy'"]),
    (["approve", "{deal}", "--as", MANAGER, "--reason", "ok", "--crm", "nosuchcrm"], 2,
     ["Invalid crm", "must be one of hubspot, salesforce, memory"]),
    (["approve", "../users/005", "--as", MANAGER, "--reason", "ok"], 2, ["Invalid deal_id"]),
    (["approve", "no-such-deal", "--as", MANAGER, "--reason", "ok"], 5,
     ["No running handoff", "deal 'no-such-deal'"]),
    (["approve", "{deal}", "--type", "renewal", "--as", MANAGER, "--reason", "ok"], 5,
     ["No running handoff", "no renewal handoff", "renewal-memory-"]),
    (["approve", "{deal}", "--type", "upsell", "--as", MANAGER, "--reason", "ok"], 2,
     ["unknown handoff type 'upsell'", f"allowed: {', '.join(registry.type_names())}"]),
    (["status", "no-such-deal"], 5, ["No running handoff", "deal 'no-such-deal'"]),
    (["demo", "--deal", "../users/005"], 2, ["Invalid deal_id"]),
    (["dev", "--crm", "bogus"], 2, ["--crm must be hubspot, salesforce or memory, not 'bogus'"]),
    (["frobnicate"], 2, ["No such command 'frobnicate'"]),
]  # fmt: skip


async def test_bad_cli_arguments_exit_with_their_code_and_a_clear_message_and_change_nothing(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Every case exits with its code and message; the deal's status is the same after."""
    address = dev_env.client.service_client.config.target_host
    settings = make_settings(tmp_path)
    async with deal_at_tier(dev_env.client, f"tq-{uuid.uuid4()}", settings) as (handle, _, _):
        deal = deal_id_of(handle)
        before = await status(handle)
        results = await asyncio.gather(
            *(handoff(address, *[a.format(deal=deal) for a in args], HANDOFF_CRM="memory")
              for args, _, _ in CASES)
        )  # fmt: skip
        for (args, code, fragments), (got, text) in zip(CASES, results, strict=True):
            assert got == code, (args, got, text)
            for fragment in fragments:
                assert fragment in " ".join(text.split()), (args, fragment, text)
            assert "Traceback" not in text, (args, text)
        assert same_state(before, await status(handle))


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HANDOFF_CRM": "bogus"}, "HANDOFF_CRM: Input should be 'hubspot', 'salesforce' or"),
        ({"HANDOFF_API_PORT": "eighty"}, "HANDOFF_API_PORT: Input should be a valid integer"),
    ],
)
async def test_a_bad_setting_exits_2_naming_the_variable_without_a_traceback(
    dev_env: WorkflowEnvironment, env: dict[str, Any], fragment: str
) -> None:
    """A mistyped environment variable is named with its allowed values, exit code 2."""
    address = dev_env.client.service_client.config.target_host
    code, text = await handoff(address, "status", "1", **env)
    assert code == 2, text
    assert "Invalid configuration" in text
    assert fragment in " ".join(text.split())
    assert "Traceback" not in text
