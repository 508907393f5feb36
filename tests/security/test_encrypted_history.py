"""Deal data in Temporal history is encrypted end to end with the payload codec."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

from google.protobuf.json_format import MessageToDict
from support.handoffs import (
    MANAGER,
    QUALIFY_EVIDENCE,
    give_evidence,
    handoff_worker,
    make_deal,
    start,
    until,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from worker.codec import EncryptionCodec


async def test_history_holds_no_deal_data_in_the_clear(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A client without the key sees only ciphertext; one with it still queries status."""
    codec = EncryptionCodec({"k1": b"s" * 32})
    encrypted = Client(
        time_env.client.service_client,
        namespace="default",
        data_converter=dataclasses.replace(pydantic_data_converter, payload_codec=codec),
    )
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=20)
    deal.name = "Very Secret Merger"
    async with handoff_worker(encrypted, task_queue, MemoryConnector([deal])):
        handle = await start(encrypted, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.deal_name == "Very Secret Merger" and st.owner == [MANAGER]

        history = await time_env.client.get_workflow_handle(handle.id).fetch_history()
    payloads = [p for event in history.events for p in payloads_in(MessageToDict(event))]
    assert payloads, "the history has payloads"
    for encoding, data in payloads:
        assert encoding == b"binary/encrypted"
        assert b"Very Secret Merger" not in data
        assert MANAGER.encode() not in data and b"budget_confirmed" not in data


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
