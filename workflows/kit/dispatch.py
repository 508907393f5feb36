"""Turning raw signal and update payloads into validated messages, or refusals.

Handoff's messages arrive from CLIs, HTTP, webhooks and raw `temporal workflow signal`
calls, so a payload may be anything. Each message name maps to a `Handler`: the model
that parses it, a check that returns a `No` (a typed refusal code and its reason) or
None, and the effect. Signals that fail are recorded as refused; updates that fail are
rejected with the reason and the code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RawValue

from workflows.names import Refusal


@dataclass(frozen=True)
class No:
    """A refusal: the typed code surfaces map to a status, and the reason in words."""

    code: Refusal
    reason: str


@dataclass(frozen=True)
class Handler:
    """How one message is parsed, checked and applied."""

    model: type[BaseModel]
    check: Callable[[Any], No | None]
    apply: Callable[[Any], Awaitable[str]]


class Part(Protocol):
    """A part of a handoff that owns some messages."""

    def handlers(self) -> list[tuple[str, Handler]]: ...


def describe(exc: ValidationError) -> str:
    """A pydantic error in one line that names each bad field and what is allowed."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse(model: type[BaseModel], args: Sequence[RawValue]) -> BaseModel | str:
    """The message, or a refusal reason when the payload is not one."""
    if len(args) != 1:
        return f"expected exactly one JSON object as input, got {len(args)} arguments"
    try:
        value = workflow.payload_converter().from_payload(args[0].payload)
    except Exception as exc:  # any undecodable payload is bad input, not a crash
        return f"payload is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return f"expected a JSON object with fields {sorted(model.model_fields)}, got {value!r}"
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        return describe(exc)


def claimed_by(value: Any) -> str | None:
    """Who a (possibly invalid) payload says it is from, for the audit trail."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        for field in ("by", "approver"):
            if isinstance(value.get(field), str):
                return str(value[field])[:200]
    return None


def raw_claimed_by(args: Sequence[RawValue]) -> str | None:
    """`claimed_by` for a payload that may not even parse."""
    if len(args) != 1:
        return None
    try:
        return claimed_by(workflow.payload_converter().from_payload(args[0].payload))
    except Exception:  # an undecodable payload claims nobody
        return None
