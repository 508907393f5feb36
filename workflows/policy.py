"""The policy: evidence, discount tiers, SLAs, handoff contracts and payment terms.

Ops change policy without code. A policy file is validated at load; a bad one fails with
a message naming the field. Each workflow carries the policy it started with and its
version (a content hash), so editing the file never changes a running handoff.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic_core
import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from connectors.mapping import evidence_in_fields
from workflows.business_hours import BusinessCalendar
from workflows.names import Stage
from workflows.policy_checks import REQUIRED_EXCEPTIONS, file_problems, reference_problems
from workflows.policy_people import (
    OWNER_MANAGER,
    PEOPLE_FIELDS,
    ManagerEmail,
    PersonEntry,
    manager_of,
)
from workflows.policy_quote import DEFAULT_INFO_CLOCK, QuoteRule
from workflows.policy_rules import (
    Clock,
    Contract,
    DiscountPolicy,
    EvidenceEntry,
    EvidenceRule,
    ExceptionPolicy,
    PaymentTerms,
    RenewalPolicy,
    StagePolicy,
    Tier,
    _Strict,
)

__all__ = [
    "REQUIRED_EXCEPTIONS",
    "Clock",
    "Contract",
    "DiscountPolicy",
    "EvidenceRule",
    "ExceptionPolicy",
    "PaymentTerms",
    "Policy",
    "PolicyError",
    "QuoteRule",
    "RenewalPolicy",
    "SharedPolicy",
    "StagePolicy",
    "Tier",
    "default_policy",
    "load_policy",
    "parse_policy",
]


class Policy(_Strict):
    """Everything ops can change without code. See `deploy/policy.example.yaml`."""

    name: str = "default"
    currency: str = "USD"
    people: dict[str, list[str]] = Field(description="Roles to people (emails).")
    evidence: dict[str, EvidenceEntry] = Field(
        description="Evidence kinds: what each means, who may record it, from which stage."
    )
    stages: dict[Stage, StagePolicy]
    discounts: DiscountPolicy
    contracts: dict[Literal["sales_to_ops", "ops_to_billing"], Contract]
    payment_terms: PaymentTerms = PaymentTerms()
    exceptions: dict[str, ExceptionPolicy]
    crm_stages: dict[Stage, str] = Field(
        default_factory=dict, description="CRM stage value to set when a stage completes."
    )
    field_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per CRM: canonical field → CRM property overrides."
    )
    renewal: RenewalPolicy | None = Field(
        default=None, description="Optional: only the renewal workflow needs it."
    )
    handoffs: dict[str, StagePolicy] = Field(
        default_factory=dict,
        description="Stages of handoffs added with `handoff new`, by handoff name.",
    )
    lost_crm_stages: list[str] = Field(
        default_factory=lambda: ["closed_lost"],
        description="Canonical CRM stages that mean the deal is lost: the handoff ends.",
    )
    reopen_crm_stages: list[str] = Field(
        default_factory=lambda: ["new", "qualified", "negotiation"],
        description="Canonical CRM stages that re-open a lost deal: a new handoff starts, "
        "linked to the lost one.",
    )
    trigger_crm_stages: list[str] = Field(
        default_factory=lambda: ["new"],
        description="Canonical CRM stages that start a deal's handoff when a deal enters them.",
    )
    evidence_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical CRM field → evidence kind, recorded when the field is truthy.",
    )
    calendars: dict[str, BusinessCalendar] = Field(
        default_factory=dict,
        description="Business calendars by team: SLAs count their working hours "
        "(see workflows/policy_people.py).",
    )
    directory: dict[str, PersonEntry] = Field(
        default_factory=dict,
        description="People by email: their manager and team (role `owner_manager`).",
    )
    team_managers: dict[str, ManagerEmail] = Field(
        default_factory=dict,
        description="CRM team name → who manages it (role `owner_manager` for HubSpot "
        "owners, by their primary team).",
    )
    quote_rules: list[QuoteRule] = Field(
        default_factory=list,
        description="Approval rules over the quote (`workflows.policy_quote`).",
    )
    info_request: Clock = Field(
        default=DEFAULT_INFO_CLOCK,
        description="SLA of an approver's question to the rep (owner: the deal owner).",
    )

    @model_validator(mode="after")
    def _references_exist(self) -> Policy:
        """Every role, evidence kind, stage and tier a rule names exists, and what
        Handoff needs is there (`workflows.policy_checks`)."""
        if problems := reference_problems(self):
            raise ValueError("; ".join(problems))
        return self

    # -- helpers used by workflows (pure, deterministic) -------------------------------
    @property
    def version(self) -> str:
        """A content hash: equal policies have equal versions, whatever the file layout."""
        data = self.model_dump(mode="json")
        for name in PEOPLE_FIELDS:  # unused people fields leave older versions as they were
            if not data.get(name):
                data.pop(name, None)
        if not self.quote_rules and self.info_request == DEFAULT_INFO_CLOCK:
            del data["quote_rules"], data["info_request"]  # older policies keep their version
        canonical = json.dumps(data, sort_keys=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def people_for(
        self, role: str | None, deal_owner: str = "", crm_manager: str | None = None
    ) -> list[str]:
        """The emails behind a role; `deal_owner` resolves to the deal's owner, and
        `owner_manager` to `crm_manager` (the CRM's word) when given."""
        if role is None:
            return []
        if role == "deal_owner":
            return [deal_owner] if deal_owner else list(self.people.get("sales_rep", []))
        if role == OWNER_MANAGER:
            owner = deal_owner or next(iter(self.people.get("sales_rep", [])), "")
            return manager_of(self.directory, self.people, owner, crm_manager)
        return list(self.people.get(role, []))

    def stage(self, stage: Stage) -> StagePolicy:
        return self.stages[stage]

    def evidence_kinds(self) -> list[str]:
        return sorted(self.evidence)

    def evidence_in_fields(self, fields: dict[str, str]) -> list[str]:
        """Evidence kinds that CRM fields prove (a ticked "budget confirmed" box...)."""
        return evidence_in_fields(self.evidence_fields, fields)


#: Decoded policies by the exact data they were decoded from (`SharedPolicy`).
_SHARED: dict[bytes, Policy] = {}
#: Policies kept at once: one per policy version in use on this worker, in practice.
SHARED_POLICIES_MAX = 32


def _shared_policy(value: Any, handler: ValidatorFunctionWrapHandler) -> Policy:
    """One `Policy` object per distinct policy data in this process, reused by every
    workflow run that starts (or is replayed) with the same data.

    Each run's input carries the whole policy (~46 KiB once decoded, about a millisecond
    of CPU to validate); runs on one policy version share one read-only copy instead.
    The key is the data itself, serialised exactly (so `1`, `1.0` and `true` never
    share): the same data always validates to an equal policy, so which run decoded it
    first changes nothing a workflow sees. A `Policy` is frozen, and workflow code only reads it."""
    if not isinstance(value, dict):  # a `Policy` given in code, or bad input
        return handler(value)  # type: ignore[no-any-return]
    key = pydantic_core.to_json(value)
    if (cached := _SHARED.get(key)) is not None:
        return cached
    policy: Policy = handler(value)  # a validation error is raised and nothing is kept
    if len(_SHARED) >= SHARED_POLICIES_MAX:
        _SHARED.clear()
    # workflow tasks decode on several threads: the first copy stored is the one shared
    return _SHARED.setdefault(key, policy)


#: The policy in a workflow input or state: decoded once per distinct policy data and
#: shared read-only by the runs that carry it (`_shared_policy`). Same schema and JSON.
SharedPolicy = Annotated[Policy, WrapValidator(_shared_policy)]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names each bad field."""


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_policy(data: object, source: str = "policy") -> Policy:
    """Validate policy data from a file; raises `PolicyError` naming the fields."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source} is invalid:\n{_format(exc)}") from None
    if problems := file_problems(policy):
        raise PolicyError(f"{source} is invalid:\n" + "\n".join(f"  {p}" for p in problems))
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate a YAML policy file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path} is not valid YAML: {exc}") from None
    return parse_policy(data, source=str(path))


DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")


def default_policy() -> Policy:
    """The shipped default policy (the same as `deploy/policy.example.yaml`)."""
    return load_policy(DEFAULT_POLICY_PATH)
