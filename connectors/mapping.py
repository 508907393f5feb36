"""Canonical field names ↔ CRM property names.

Each connector ships a default mapping for its CRM; the policy's ``field_mapping``
section overrides entries (for example a custom Salesforce field ``Scope__c``).
Canonical names not in the mapping are not written.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from connectors.base import FieldValue

#: Canonical fields Handoff reads and writes. Connectors map each to a CRM property.
CANONICAL_FIELDS = (
    "name",
    "crm_stage",
    "amount",
    "discount_percent",
    "owner_email",
    "scope",
    "start_date",
    "site_notes",
    "primary_contact",
    "promised",
    "billing_contact",
    "po_number",
    "cost",
    "contract_end_date",
    "handoff_stage",
    "handoff_status",
    "handoff_owner",
    "handoff_due_at",
    "approved_discount",
    "real_margin",
    "handoff_key",
    "need_confirmed",
    "budget_confirmed",
    "decision_maker_identified",
    "timeline_confirmed",
)

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
