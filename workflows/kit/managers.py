"""The deal owner's manager as the CRM says (the role `owner_manager`).

Read when the handoff opens (the first read of the deal) and whenever the owner changes
(in the CRM, or a re-read finds another owner): Salesforce's `User.ManagerId`, or the
HubSpot owner's primary team, which the policy's `team_managers` maps to a person. The
CRM's word wins over the policy `directory`; the directory and then `sales_manager`
stay the fallbacks (`workflows/policy_people.py`).

The read is a look-up the handoff can do without: a few tries (`CRM_LOOKUP`; at the
opening, `crm.open_deal` reads it with the deal and gives it up after as many), then the
policy decides and the audit trail says why. A CRM failure here never parks the deal.
When the manager changes, escalation levels still to come move to the new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities
    from connectors.managers import OwnerManager, OwnerRef

from workflows.kit.patches import patched
from workflows.kit.people import swap_clock
from workflows.options import CRM_LOOKUP
from workflows.policy_people import OWNER_MANAGER

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: `owner_manager` is read from the CRM (runs opened before use
#: the policy directory only).
OWNER_MANAGER_CRM = "owner-manager-crm"
#: Who the audit trail names for what Handoff itself found out.
HANDOFF = "handoff"


class OwnerManagers:
    """The CRM's answer for the deal's current owner (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def crm_manager(self) -> str | None:
        """The owner's manager as the CRM says, for the owner the deal has now."""
        st = self._h.state
        got = st.crm_manager
        return self._named(got) if got is not None and got.owner_email == st.owner_email else None

    def _named(self, got: OwnerManager) -> str | None:
        if got.manager:
            return got.manager
        return self._h.policy.team_managers.get(got.team) if got.team else None

    def _managers_of(self, got: OwnerManager | None) -> list[str]:
        """`owner_manager` as it was resolved for the owner `got` answered about."""
        if got is None:
            return []
        h = self._h
        return h.acting(h.policy.people_for(OWNER_MANAGER, got.owner_email, self._named(got)))

    def before(self) -> list[str]:
        """Who `owner_manager` is now, as the CRM answered for the previous owner."""
        return self._managers_of(self._h.state.crm_manager)

    async def refresh(self) -> None:
        """Read the owner's manager from the CRM unless it is known for this owner."""
        h, st = self._h, self._h.state
        owner = st.owner_email
        if not owner or (st.crm_manager is not None and st.crm_manager.owner_email == owner):
            return
        if not patched(h, OWNER_MANAGER_CRM):
            return
        before = self.before()
        try:
            got = await workflow.execute_activity_method(
                CrmActivities.owner_manager, OwnerRef(owner_email=owner), **CRM_LOOKUP
            )
        except ActivityError as exc:
            cause = str(exc.cause) if exc.cause is not None else str(exc)
            self.learned(owner, None, cause, before)
        else:
            self.learned(owner, got, None, before)

    def learned(
        self, owner: str, got: OwnerManager | None, problem: str | None, before: list[str]
    ) -> None:
        """The CRM's answer about `owner`'s manager (or why it gave none) is in: keep it,
        say so in the audit trail, and move escalations still to come from `before`
        (who `owner_manager` was for the previous owner)."""
        h, st = self._h, self._h.state
        if got is None:
            st.crm_manager = OwnerManager(owner_email=owner)  # not asked again for this owner
            h.audit.record(
                "info",
                f"could not read {owner}'s manager from the CRM ({(problem or '')[:200]}); "
                f"owner_manager is {', '.join(h.people(OWNER_MANAGER)) or 'nobody'} "
                "from the policy",
                HANDOFF,
            )
        else:
            st.crm_manager = got
            h.audit.record("info", self._describe(owner), HANDOFF)
        self._move(before, h.people(OWNER_MANAGER))

    def _describe(self, owner: str) -> str:
        got, now = self._h.state.crm_manager, ", ".join(self._h.people(OWNER_MANAGER)) or "nobody"
        assert got is not None
        if got.manager:
            return f"{owner}'s manager in the CRM: {got.manager}"
        if got.team and self.crm_manager():
            return f"{owner}'s team in the CRM: {got.team}, managed by {now} (policy team_managers)"
        if got.team:
            return (
                f"{owner}'s team in the CRM ({got.team}) is not in the policy's team_managers; "
                f"owner_manager is {now} from the policy"
            )
        return f"the CRM names no manager for {owner}; owner_manager is {now} from the policy"

    def _move(self, before: list[str], after: list[str]) -> None:
        """Escalation levels still to come move from the old manager to the new one."""
        if before == after or len(before) != 1 or len(after) != 1:
            return
        st, old, new = self._h.state, before[0], after[0]
        moved = swap_clock(st.clock, old, new)
        for exc in st.open_exceptions():
            moved = swap_clock(exc.clock, old, new) or moved
        if moved:
            self._h.audit.record(
                "info", f"escalations to the owner's manager move from {old} to {new}", HANDOFF
            )
            self._h.publish()
