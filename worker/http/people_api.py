"""The people and policy routes of the JSON API (ops): reassign a person who left, set
an absence with a delegate, diff and simulate a policy, and apply it to open handoffs.

The actor is always the authenticated user (`by` never comes from the body); each
handoff checks the duty itself (sales ops; a person may set their own absence), and a
refusal maps to its status like every other (`not_authorised` 403, `invalid` 422).
Policies travel as YAML text in a JSON body, bounded like every body
(`HANDOFF_MAX_BODY_BYTES`) and validated like a policy file (422 naming the field).
"""

# No `from __future__ import annotations`: FastAPI evaluates the route signatures.

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from worker.client import people
from worker.client.policy_moves import apply_open, simulate
from worker.http.auth import Identity, current_user
from worker.http.deps import client_of
from worker.http.errors import ErrorBody
from workflows.messages import Email, Reason
from workflows.policy import Policy, PolicyError, parse_policy
from workflows.policy_diff import diff

User = Annotated[Identity, Depends(current_user)]
#: A policy file is a few kilobytes; this bounds the YAML text before it is parsed.
MAX_POLICY_CHARS = 60_000

router = APIRouter(
    prefix="/api",
    tags=["people and policy"],
    responses={
        403: {"model": ErrorBody, "description": "Refused (not_authorised)."},
        422: {"model": ErrorBody, "description": "Invalid body or policy, named."},
    },
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReassignBody(Body):
    from_person: Email
    to_person: Email
    reason: Reason = "left the team"


class AwayBody(Body):
    person: Email
    delegate: Email
    until: datetime = Field(description="Back at this instant (ISO 8601, with a zone).")
    reason: Reason = "out of office"


class PolicyBody(Body):
    policy_yaml: str = Field(max_length=MAX_POLICY_CHARS, description="A policy file's text.")
    reason: Reason = "policy update"


class DiffBody(Body):
    old_yaml: str = Field(max_length=MAX_POLICY_CHARS)
    new_yaml: str = Field(max_length=MAX_POLICY_CHARS)


def _policy(text: str, name: str) -> Policy | JSONResponse:
    try:
        return parse_policy(yaml.safe_load(text), source=name)
    except yaml.YAMLError as exc:
        return JSONResponse({"error": "invalid", "reason": f"{name}: {exc}"}, status_code=422)
    except PolicyError as exc:
        return JSONResponse({"error": "invalid", "reason": str(exc)}, status_code=422)


def _moved(rows: list[people.Moved]) -> list[dict[str, Any]]:
    return [{**asdict(m), "moved": m.moved_something} for m in rows]


@router.post("/people/reassign")
async def reassign(request: Request, user: User, body: ReassignBody) -> Any:
    """Move every open wait, approval and CRM task of `from_person` to `to_person`, as
    the authenticated user (sales ops); each deal's history records it."""
    return _moved(
        await people.reassign(
            client_of(request),
            from_person=body.from_person,
            to_person=body.to_person,
            by=user.email,
            reason=body.reason,
        )
    )


@router.post("/people/away")
async def away(request: Request, user: User, body: AwayBody) -> Any:
    """`person` is away until `until`; `delegate` acts meanwhile (yourself, or sales ops)."""
    return _moved(
        await people.away(
            client_of(request),
            person=body.person,
            delegate=body.delegate,
            until=body.until,
            by=user.email,
            reason=body.reason,
        )
    )


@router.post("/policy/diff")
async def policy_diff(user: User, body: DiffBody) -> Any:
    """Who gains or loses which duty, then every setting that changes."""
    old, new = _policy(body.old_yaml, "old_yaml"), _policy(body.new_yaml, "new_yaml")
    if isinstance(old, JSONResponse):
        return old
    if isinstance(new, JSONResponse):
        return new
    change = diff(old, new)
    return {
        "old_version": change.old_version,
        "new_version": change.new_version,
        "people": [asdict(p) for p in change.people],
        "lines": change.lines(),
    }


@router.post("/policy/simulate")
async def policy_simulate(request: Request, user: User, body: PolicyBody) -> Any:
    """What every open handoff is asked under the live policy, and would be under this one."""
    from worker.policy import PolicySource

    new = _policy(body.policy_yaml, "policy_yaml")
    if isinstance(new, JSONResponse):
        return new
    live = PolicySource.from_settings(request.app.state.settings).current()
    rows = await simulate(client_of(request), live, new)
    return [{**asdict(r), "changes": r.changes} for r in rows]


@router.post("/policy/apply")
async def policy_apply(request: Request, user: User, body: PolicyBody) -> Any:
    """Move every open handoff to this policy, as the authenticated user (sales ops)."""
    new = _policy(body.policy_yaml, "policy_yaml")
    if isinstance(new, JSONResponse):
        return new
    return _moved(await apply_open(client_of(request), new, by=user.email, reason=body.reason))
