"""The handoff types: one entry per type, the one source every surface reads.

The worker registers each type's workflow from here; the client path starts, finds and
lists handoffs by these entries; the CLI, the API, the inbox, the deal page, the stall
board, signed links, `status` and `list` accept exactly these names. A type's workflow
ID is `<name>-<crm>-<deal id>` (`workflows.names.handoff_id`).

`handoff new <name>` appends its type to `GENERATED` below, so a scaffolded handoff is
on every surface with no hand wiring. This module imports the workflow classes, so
workflow code never imports it (it runs outside the workflow sandbox).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from workflows import names
from workflows.change_feed import ChangeFeed
from workflows.discount_approval import DiscountApproval
from workflows.lead_to_cash import LeadToCash, LeadToCashInput
from workflows.policy import Policy, PolicyError
from workflows.records import ApprovalRecord, Terms
from workflows.renewal import RenewalExpansion, RenewalInput


class Carried(BaseModel):
    """What a handoff continues from a closed predecessor (a renewal from its deal's
    lead-to-cash): that run's workflow id, its final terms and its approvals."""

    model_config = ConfigDict(frozen=True)

    from_workflow_id: str | None = None
    terms: Terms | None = None
    approvals: list[ApprovalRecord] = []


#: Builds a type's start input from the deal, the policy and anything carried over.
InputBuilder = Callable[[str, str, Policy, Carried], BaseModel]


@dataclass(frozen=True)
class HandoffType:
    """One kind of handoff, as every surface sees it."""

    #: Public name, also the first part of the workflow id (`lead-to-cash`, `renewal`).
    name: str
    #: The workflow class (its `@workflow.defn` name is the Temporal workflow type).
    workflow: type
    #: Builds the start input from (crm, deal id, policy, carried context).
    build_input: InputBuilder
    #: The type whose closed run this one continues, if any (renewal: lead-to-cash).
    continues: str | None = None
    #: One line for `--help` and the docs.
    summary: str = ""

    @property
    def has_ladder(self) -> bool:
        """Whether it runs the discount approval ladder (so it can appear in an inbox), as
        its workflow class declares (`HandoffWorkflow.has_ladder`)."""
        return bool(getattr(self.workflow, "has_ladder", False))

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type name (`WorkflowType` in visibility queries)."""
        defn = getattr(self.workflow, "__temporal_workflow_definition", None)
        name = getattr(defn, "name", None)
        return name if isinstance(name, str) else self.workflow.__name__

    def workflow_id(self, crm: str, deal_id: str) -> str:
        return names.handoff_id(self.name, crm, deal_id)

    def start_input(self, crm: str, deal_id: str, policy: Policy, carried: Carried) -> BaseModel:
        return self.build_input(crm, deal_id, policy, carried)


class UnknownHandoffType(ValueError):
    """A type name that is not registered; the message lists the ones that are."""


def _lead_to_cash(crm: str, deal_id: str, policy: Policy, carried: Carried) -> BaseModel:
    return LeadToCashInput(
        crm=crm,
        deal_id=deal_id,
        policy=policy,
        policy_version=policy.version,
        reopened_from=carried.from_workflow_id,
    )


def _renewal(crm: str, deal_id: str, policy: Policy, carried: Carried) -> BaseModel:
    return RenewalInput(
        crm=crm,
        deal_id=deal_id,
        policy=policy,
        policy_version=policy.version,
        from_workflow_id=carried.from_workflow_id,
        terms=carried.terms,
        approvals=list(carried.approvals),
    )


def _generated(name: str, module: str, cls: str) -> HandoffType:
    """A type made by `handoff new`: `workflows.<module>` defines `<cls>` and `<cls>Input`
    (crm, deal_id, policy, policy_version). Whether it has a ladder, `<cls>` declares."""
    mod = importlib.import_module(f"workflows.{module}")
    workflow_cls, input_cls = getattr(mod, cls), getattr(mod, f"{cls}Input")

    def build(crm: str, deal_id: str, policy: Policy, _: Carried) -> BaseModel:
        if module not in policy.handoffs:
            raise PolicyError(
                f"the policy has no `handoffs.{module}` section: paste "
                f"workflows/{module}.policy.yaml into it before starting {name} handoffs"
            )
        built: BaseModel = input_cls(
            crm=crm, deal_id=deal_id, policy=policy, policy_version=policy.version
        )
        return built

    return HandoffType(name, workflow_cls, build, summary=f"{module} handoff")


#: Types made by `handoff new`: (public name, module under workflows/, class). The
#: scaffold adds one line per type above the marker; delete a line to unregister it.
GENERATED: tuple[tuple[str, str, str], ...] = (
    # handoff new: generated types above this line
)

HANDOFF_TYPES: tuple[HandoffType, ...] = (
    HandoffType(
        names.LEAD_TO_CASH,
        LeadToCash,
        _lead_to_cash,
        summary="a new deal from qualification to cash",
    ),
    HandoffType(
        names.RENEWAL,
        RenewalExpansion,
        _renewal,
        continues=names.LEAD_TO_CASH,
        summary="renewal and expansion of a customer deal",
    ),
    *(_generated(*entry) for entry in GENERATED),
)
DEFAULT_TYPE = names.LEAD_TO_CASH

#: What the worker registers: every type's workflow, the Salesforce change feed, and the
#: legacy `DiscountApproval` child, which handoffs started before the ladder moved into
#: the deal's workflow still run.
WORKER_WORKFLOWS: tuple[type, ...] = (
    *(t.workflow for t in HANDOFF_TYPES),
    DiscountApproval,
    ChangeFeed,
)

_BY_NAME = {t.name: t for t in HANDOFF_TYPES}
_BY_WORKFLOW_TYPE = {t.workflow_type: t for t in HANDOFF_TYPES}


def type_names() -> list[str]:
    """The public names, in registry order (`lead-to-cash`, `renewal`, ...)."""
    return [t.name for t in HANDOFF_TYPES]


def get(name: str) -> HandoffType:
    """The type called `name`; raises `UnknownHandoffType` naming the allowed values."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownHandoffType(
            f"unknown handoff type {name!r}; allowed: {', '.join(type_names())}"
        ) from None


def for_workflow_type(workflow_type: str) -> HandoffType | None:
    """The type whose workflow is called `workflow_type` (from a status or a listing)."""
    return _BY_WORKFLOW_TYPE.get(workflow_type)


def parse_workflow_id(workflow_id: str) -> tuple[HandoffType, str, str] | None:
    """`renewal-hubspot-1001` → (renewal, `hubspot`, `1001`); None if no type matches."""
    for t in sorted(HANDOFF_TYPES, key=lambda t: len(t.name), reverse=True):
        prefix = f"{t.name}-"
        if workflow_id.startswith(prefix):
            crm, sep, deal_id = workflow_id[len(prefix) :].partition("-")
            if crm and sep and deal_id:
                return t, crm, deal_id
    return None


def visibility_clause(types: Sequence[HandoffType] | None = None) -> str:
    """`WorkflowType IN ('LeadToCash', ...)` over `types` (default: every handoff type)."""
    chosen = HANDOFF_TYPES if types is None else types
    quoted = ", ".join(f"'{t.workflow_type}'" for t in chosen)
    return f"WorkflowType IN ({quoted})"
