"""Canonical field names ↔ CRM property names.

Each connector ships a default mapping for its CRM; the policy's ``field_mapping``
section overrides entries (for example a custom Salesforce field ``Scope__c``).
Canonical names not in the mapping are not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, Field

from connectors.base import FieldValue


class DealField(StrEnum):
    """Canonical fields Handoff reads and writes; connectors map each to a CRM property.

    Workflows name fields through these constants, so a typo fails at import, not
    silently in the CRM."""

    NAME = "name"
    CRM_STAGE = "crm_stage"
    AMOUNT = "amount"
    DISCOUNT_PERCENT = "discount_percent"
    OWNER_EMAIL = "owner_email"
    SCOPE = "scope"
    START_DATE = "start_date"
    SITE_NOTES = "site_notes"
    PRIMARY_CONTACT = "primary_contact"
    PROMISED = "promised"
    BILLING_CONTACT = "billing_contact"
    PO_NUMBER = "po_number"
    COST = "cost"
    CONTRACT_END_DATE = "contract_end_date"
    HANDOFF_STAGE = "handoff_stage"
    HANDOFF_STATUS = "handoff_status"
    HANDOFF_OWNER = "handoff_owner"
    HANDOFF_DUE_AT = "handoff_due_at"
    APPROVED_DISCOUNT = "approved_discount"
    REAL_MARGIN = "real_margin"
    HANDOFF_KEY = "handoff_key"
    NEED_CONFIRMED = "need_confirmed"
    BUDGET_CONFIRMED = "budget_confirmed"
    DECISION_MAKER_IDENTIFIED = "decision_maker_identified"
    TIMELINE_CONFIRMED = "timeline_confirmed"


#: Canonical field names, as plain strings.
CANONICAL_FIELDS = tuple(f.value for f in DealField)

#: Canonical CRM stage values; each connector maps them to its CRM's stage ids.
CANONICAL_CRM_STAGES = ("new", "qualified", "negotiation", "closed_won", "closed_lost")


#: Field values that mean "ticked" (HubSpot checkboxes, Salesforce booleans, forms).
TRUTHY = frozenset({"true", "yes", "1", "on", "checked"})


def evidence_in_fields(evidence_fields: Mapping[str, str], fields: Mapping[str, str]) -> list[str]:
    """Evidence kinds that CRM fields prove: canonical field → kind, when the field is ticked."""
    return [
        kind
        for name, kind in evidence_fields.items()
        if fields.get(name, "").strip().lower() in TRUTHY
    ]


class FieldMapping(BaseModel):
    """A two-way map between canonical names and one CRM's property names."""

    fields: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical CRM stage values (closed_won...) to the CRM's stage ids.",
    )

    def overridden(self, overrides: Mapping[str, str] | None) -> FieldMapping:
        """A copy with `overrides` (canonical → property) applied."""
        return FieldMapping(fields={**self.fields, **(overrides or {})}, stages=dict(self.stages))

    def to_crm(self, values: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
        """Canonical values → CRM properties; stage values go through `stages`."""
        out: dict[str, FieldValue] = {}
        for name, value in values.items():
            prop = self.fields.get(name)
            if prop is None:
                continue
            if name == "crm_stage" and isinstance(value, str):
                value = self.stages.get(value, value)
            out[prop] = value
        return out

    def from_crm(self, props: Mapping[str, object]) -> dict[str, str]:
        """CRM properties → canonical values as text (missing or null become absent)."""
        reverse_stages = {v: k for k, v in self.stages.items()}
        out: dict[str, str] = {}
        for name, prop in self.fields.items():
            value = props.get(prop)
            if value is None or value == "":
                continue
            text = str(value)
            out[name] = reverse_stages.get(text, text) if name == "crm_stage" else text
        return out
