"""Raw `temporal workflow signal` calls with bad payloads: each is recorded as refused in
status.history, the workflow keeps running and no workflow task ever fails."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from support.api import MANAGER, OWNER, deal_at_tier, make_settings
from support.faults import workflow_task_failures
from support.handoffs import status, until
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration

TEMPORAL = shutil.which("temporal", path=str(Path(sys.executable).parent)) or "temporal"

# (signal name, the --input values, a fragment the refusal must contain)
CASES: list[tuple[str, list[str], str]] = [
    ("add_evidence", ['{"kind": 42, "by": "sam.rep@example.com"}'],
     "kind: Input should be a valid string"),
    ("add_evidence", [json.dumps({"kind": "telepathy", "by": OWNER})],
     "unknown evidence kind 'telepathy'"),
    ("raise_exception", [json.dumps({"kind": "alien_invasion", "by": OWNER, "note": "!"})],
     "unknown exception kind 'alien_invasion'"),
    ("approve", [json.dumps({"approver": "mallory@example.com", "reason": "trust me"})],
     "mallory@example.com is not an approver of the sales_manager tier"),
    ("approve", [json.dumps({"approver": MANAGER, "reason": ""})],
     "reason: String should have at least 1 character"),
    ("approve", [json.dumps({"approver": MANAGER})], "reason: Field required"),
    ("update_terms", [json.dumps({"by": OWNER, "discount_percent": -5})],
     "discount_percent: Input should be greater than or equal to 0"),
    ("update_terms", [json.dumps({"by": OWNER, "discount_percent": 250})],
     "discount_percent: Input should be less than or equal to 100"),
    ("update_terms", [json.dumps({"by": OWNER, "discount_percent": "lots"})],
     "discount_percent: Input should be a valid number"),
    ("approve", ["[1, 2]"], "expected a JSON object"),
    ("approve", ['"yes"'], "expected a JSON object"),
    ("approve", ["null"], "expected a JSON object"),
    ("approve", ["42"], "expected a JSON object"),
    ("approve", ['{"approver": "a@b.c", "reason": "x"}', '{"again": true}'],
     "expected exactly one JSON object as input, got 2 arguments"),
    ("approve", [], "expected exactly one JSON object as input, got 0 arguments"),
    ("approve_everything", [json.dumps({"approver": MANAGER})], "unknown message"),
]  # fmt: skip


async def signal(address: str, wf_id: str, name: str, inputs: list[str]) -> None:
    args = [a for value in inputs for a in ("--input", value)]
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, "workflow", "signal", "--workflow-id", wf_id, "--name", name, *args,
        "--address", address, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, (name, inputs, out, err)


async def test_bad_raw_signals_are_refused_in_history_without_a_workflow_task_failure(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Every bad payload is a refusal with its reason; the deal still waits on the manager."""
    address = dev_env.client.service_client.config.target_host
    async with deal_at_tier(dev_env.client, f"tq-{uuid.uuid4()}", make_settings(tmp_path)) as (
        handle, _, _,
    ):  # fmt: skip
        before = await status(handle)
        for name, inputs, _ in CASES:  # one at a time, so history keeps their order
            await signal(address, handle.id, name, inputs)
        refused = len([h for h in before.history if not h.accepted])
        st = await until(
            handle, lambda s: len([h for h in s.history if not h.accepted]) == refused + len(CASES)
        )
        refusals = [h.detail for h in st.history if not h.accepted][refused:]
        for (name, _, fragment), detail in zip(CASES, refusals, strict=True):
            assert detail.startswith(f"{name} refused:"), detail
            assert fragment in detail, (fragment, detail)

        assert st.pending_approval is not None
        assert st.owner == [MANAGER]
        assert st.approvals == before.approvals
        assert st.terms == before.terms
        assert st.evidence == before.evidence
        assert st.exceptions == before.exceptions
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert await workflow_task_failures(handle) == []
