"""Deal data in Temporal history is encrypted end to end with the payload codec."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from pydantic import SecretStr
from support.handoffs import (
    MANAGER,
    QUALIFY_EVIDENCE,
    VP,
    give_evidence,
    handoff_worker,
    make_deal,
    start,
    until,
)
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from worker.client.temporal import data_converter
from worker.settings import Settings
from workflows.kit.contracts import CONTRACT_REREAD
from workflows.kit.crm_truth import CRM_MOVED_ONLY, CRM_TRUTH
from workflows.kit.desk import APPROVALS_INLINE
from workflows.kit.inbox import HANDLER_LOCK
from workflows.kit.managers import OWNER_MANAGER_CRM
from workflows.kit.patches import OPEN_AT_ONCE
from workflows.kit.people import PEOPLE_MOVES
from workflows.kit.policy_move import POLICY_MOVES
from workflows.kit.quote_lines import QUOTE_LINES
from workflows.kit.status import PUBLISH_CHANGES
from workflows.kit.waits import BUSINESS_CALENDAR, ESCALATION_LADDER
from workflows.names import Msg

#: The `workflow.patched` ids the engine may record: a marker holds one, and no deal data.
PATCH_IDS = frozenset(
    {
        APPROVALS_INLINE,
        HANDLER_LOCK,
        ESCALATION_LADDER,
        CRM_TRUTH,
        PUBLISH_CHANGES,
        QUOTE_LINES,
        BUSINESS_CALENDAR,
        PEOPLE_MOVES,
        POLICY_MOVES,
        OWNER_MANAGER_CRM,
        CONTRACT_REREAD,
        CRM_MOVED_ONLY,
        OPEN_AT_ONCE,
    }
)


async def test_history_holds_no_deal_data_in_the_clear(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A client without the key sees only ciphertext, refusals' reasons included; one
    with it still queries status."""
    settings = Settings(
        encrypt_payloads=True,
        encryption_keys={"k1": SecretStr(base64.b64encode(b"s" * 32).decode())},
    )
    encrypted = Client(
        time_env.client.service_client,
        namespace="default",
        data_converter=data_converter(settings),  # the converter the worker and API use
    )
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=20)
    deal.name = "Very Secret Merger"
    async with handoff_worker(encrypted, task_queue, MemoryConnector([deal])):
        handle = await start(encrypted, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.deal_name == "Very Secret Merger" and st.owner == [MANAGER]
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # a refusal names people
            await handle.execute_update(Msg.APPROVE, {"approver": VP, "reason": "not my tier"})
        assert isinstance(refused.value.cause, ApplicationError)
        assert VP in refused.value.cause.message  # the caller with the key reads the reason

        history = await time_env.client.get_workflow_handle(handle.id).fetch_history()
    events = [MessageToDict(event) for event in history.events]
    markers = [e for e in events if "markerRecordedEventAttributes" in e]
    for marker in markers:  # the SDK writes a patch marker itself: the patch id, no deal data
        for _, data in payloads_in(marker):
            assert json.loads(data)["id"] in PATCH_IDS, data
    payloads = [p for event in events if event not in markers for p in payloads_in(event)]
    assert payloads, "the history has payloads"
    for encoding, data in payloads:
        assert encoding == b"binary/encrypted"
        assert b"Very Secret Merger" not in data
        assert MANAGER.encode() not in data and b"budget_confirmed" not in data
    raw = history.to_json()
    assert MANAGER not in raw and VP not in raw, "a refusal's reason is in the clear"


def payloads_in(node: Any, under_search_attributes: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """(encoding, data) of every payload in an event, except search attributes, which
    Temporal must index in the clear (see SECURITY.md)."""
    if isinstance(node, dict):
        if "metadata" in node and "data" in node and not under_search_attributes:
            encoding = base64.b64decode(node["metadata"].get("encoding", ""))
            yield encoding, base64.b64decode(node["data"])
            return
        for key, value in node.items():
            yield from payloads_in(value, under_search_attributes or key == "searchAttributes")
    elif isinstance(node, list):
        for item in node:
            yield from payloads_in(item, under_search_attributes)
