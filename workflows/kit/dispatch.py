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
from workflows.options import MAX_MESSAGE_BYTES


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


def too_large(args: Sequence[RawValue]) -> No | None:
    """A refusal when the payload is over `MAX_MESSAGE_BYTES` (checked before decoding)."""
    size = sum(len(a.payload.data) for a in args)
    if size > MAX_MESSAGE_BYTES:
        return No(Refusal.TOO_LARGE, f"payload is {size:,} bytes; at most {MAX_MESSAGE_BYTES:,}")
    return None


def parse(model: type[BaseModel], args: Sequence[RawValue]) -> BaseModel | No:
    """The message, or a refusal when the payload is not one."""
    if (big := too_large(args)) is not None:
        return big
    if len(args) != 1:
        return No(
            Refusal.INVALID, f"expected exactly one JSON object as input, got {len(args)} arguments"
        )
    try:
        value = workflow.payload_converter().from_payload(args[0].payload)
    except Exception as exc:  # any undecodable payload is bad input, not a crash
        return No(Refusal.INVALID, f"payload is not valid JSON: {str(exc)[:200]}")
    if not isinstance(value, dict):
        fields = sorted(model.model_fields)
        return No(
            Refusal.INVALID,
            f"expected a JSON object with fields {fields}, got {type(value).__name__}",
        )
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        return No(Refusal.INVALID, describe(exc))


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
    """`claimed_by` for a payload that may not even parse (or is too large to read)."""
    if len(args) != 1 or too_large(args) is not None:
        return None
    try:
        return claimed_by(workflow.payload_converter().from_payload(args[0].payload))
    except Exception:  # an undecodable payload claims nobody
        return None
