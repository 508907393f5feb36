"""`apply_policy`: ops move an open handoff onto a new policy (`handoff policy apply
FILE --open`).

What moves, where the handoff's state allows: from now on every role, SLA, tier and
contract is read from the new policy, and `status` reports its version. A running
approval round is re-planned under it: approvals already given stay given when they
still cover their tier, and only tiers the new policy asks for more are asked. The wait
running now keeps its owner and clock (a new SLA would rewrite a deadline someone was
given); the next wait starts on the new rules. The move is one line of the history,
with who made it and why, and it survives continue-as-new (it lives in the state).

Who may: sales ops (`PEOPLE_ADMINS`), as the policy in force says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.kit.dispatch import Handler, No
from workflows.kit.patches import patched
from workflows.messages import Email, Message, Reason
from workflows.names import Msg, Refusal
from workflows.policy import Policy
from workflows.policy_people import PEOPLE_ADMINS

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: a handoff may move to a new policy while it runs.
POLICY_MOVES = "policy-moves"


class ApplyPolicyIn(Message):
    """`apply_policy`: the handoff moves to `policy` (checked like a policy file)."""

    policy: Policy
    by: Email
    reason: Reason = "policy update"


class PolicyMove:
    """Moves one handoff to a new policy (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.APPLY_POLICY, Handler(ApplyPolicyIn, self._check, self._apply))]

    def _check(self, msg: ApplyPolicyIn) -> No | None:
        h = self._h
        if not h.is_in(msg.by, list(PEOPLE_ADMINS)):
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.by} may not apply a policy (roles: {', '.join(PEOPLE_ADMINS)})",
            )
        if msg.policy.version == h.policy_version:
            return No(Refusal.DUPLICATE, f"already on policy {h.policy_version}")
        desk = h.desk
        if desk is not None and desk.legacy.child is not None:
            return No(
                Refusal.NOT_PENDING,
                "an approval round runs as a child workflow (opened before engine v2); "
                "apply once it is decided",
            )
        return None

    async def _apply(self, msg: ApplyPolicyIn) -> str:
        h, st = self._h, self._h.state
        patched(h, POLICY_MOVES)  # marks runs that may move policy
        old, new = h.policy_version, msg.policy.version
        st.moved_policy, st.moved_policy_version = msg.policy, new
        replanned = ""
        desk = h.desk
        if desk is not None and desk.tiers.asking and getattr(st, "pending_approval", None):
            # ends the tier wait; the ladder re-plans with the approvals already given
            st.terms_version += 1  # type: ignore[attr-defined]
            replanned = "; the approval round is re-planned"
        h.audit.record("info", f"policy {old} → {new} ({msg.reason}){replanned}", msg.by)
        h.changed = True
        h.publish()
        return f"moved to policy {new}{replanned}"
