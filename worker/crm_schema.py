"""What Handoff needs in a CRM: the fields and properties it reads and writes, and the
HubSpot scopes, all from the connectors' default field mappings.

`handoff crm setup` checks (and on HubSpot creates) them; `docs/crm-setup.md` lists
them; `deploy/salesforce/` holds the Salesforce metadata generated from them. A policy's
`field_mapping` may rename a field: setup then checks the renamed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from connectors.hubspot import DEFAULT_MAPPING as HUBSPOT_MAPPING
from connectors.hubspot import LAST_WRITE_PROPERTY
from connectors.hubspot_wire import KEY_PROPERTY
from connectors.mapping import FieldMapping
from connectors.salesforce import DEFAULT_MAPPING as SALESFORCE_MAPPING
from connectors.salesforce import KEY_FIELD, NOTE_KIND_FIELD

Kind = Literal["text", "long_text", "email", "number", "percent", "currency", "date",
               "datetime", "boolean"]  # fmt: skip

#: The kind of each canonical field Handoff keeps in the CRM (text unless named here).
KINDS: dict[str, Kind] = {
    "discount_percent": "percent",
    "approved_discount": "percent",
    "real_margin": "percent",
    "cost": "currency",
    "start_date": "date",
    "contract_end_date": "date",
    "handoff_due_at": "datetime",
    "need_confirmed": "boolean",
    "budget_confirmed": "boolean",
    "decision_maker_identified": "boolean",
    "timeline_confirmed": "boolean",
    "scope": "long_text",
    "site_notes": "long_text",
    "promised": "long_text",
    "handoff_owner": "email",
}

#: What each field is for, in the set-up guide.
PURPOSE = {
    "handoff_key": "idempotency key of Handoff's writes (unique)",
    "Handoff_Key__c": "idempotency key of Handoff's writes (external id)",
    "handoff_last_write": "when and under which key Handoff last wrote the deal",
    "handoff_owner_email": "the deal owner's email (who Handoff asks)",
    "Handoff_Kind__c": "marks a Task that is a timeline note",
    "handoff_payment_terms_days": "payment terms of the order",
    "Payment_Terms_Days__c": "payment terms of the order",
    "Amount__c": "order amount",
    "Currency__c": "order currency (ISO code)",
}


@dataclass(frozen=True)
class FieldSpec:
    """One field or property Handoff needs on one CRM object."""

    object: str  # HubSpot object type (deals) or Salesforce sObject (Opportunity)
    name: str
    kind: Kind
    canonical: str = ""  # the canonical field it carries, if any
    unique: bool = False  # HubSpot hasUniqueValue / Salesforce unique external id
    length: int = 255

    @property
    def purpose(self) -> str:
        return PURPOSE.get(self.name) or (
            self.canonical.replace("_", " ") if self.canonical else ""
        )


#: HubSpot deal properties every portal has (not created by Handoff).
HUBSPOT_BUILT_IN = frozenset({"dealname", "dealstage", "amount", "pipeline", "closedate"})


def hubspot_properties(mapping: FieldMapping = HUBSPOT_MAPPING) -> list[FieldSpec]:
    """The HubSpot properties Handoff needs: custom deal properties from the mapping, the
    last-write stamp, and the unique `handoff_key` on notes, tasks and orders."""
    deals = [
        FieldSpec("deals", prop, KINDS.get(canonical, "text"), canonical)
        for canonical, prop in mapping.fields.items()
        if prop not in HUBSPOT_BUILT_IN
    ]
    deals.append(FieldSpec("deals", LAST_WRITE_PROPERTY, "text"))
    keys = [FieldSpec(ot, KEY_PROPERTY, "text", unique=True) for ot in ("notes", "tasks", "orders")]
    return [
        *deals,
        *keys,
        FieldSpec("tasks", "handoff_owner_email", "text"),
        FieldSpec("orders", "handoff_payment_terms_days", "number"),
    ]


#: Scopes a HubSpot private app needs (read deals and owners, write deals, notes, tasks
#: and orders, read and create deal properties).
HUBSPOT_SCOPES = (
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.objects.owners.read",
    "crm.objects.orders.read",
    "crm.objects.orders.write",
)


def salesforce_fields(mapping: FieldMapping = SALESFORCE_MAPPING) -> list[FieldSpec]:
    """The Salesforce custom fields Handoff needs: Opportunity fields from the mapping
    (and the `Handoff_Key__c` external id), Task and Order keys, Order billing fields."""
    opportunity = [
        FieldSpec("Opportunity", name, KINDS.get(canonical, "text"), canonical,
                  length=40 if canonical in ("po_number", "handoff_stage") else 255)
        for canonical, name in mapping.fields.items()
        if name.endswith("__c") and canonical != "handoff_key"
    ]  # fmt: skip
    return [
        *opportunity,
        FieldSpec("Opportunity", KEY_FIELD, "text", "handoff_key"),
        FieldSpec("Task", KEY_FIELD, "text", unique=True),
        FieldSpec("Task", NOTE_KIND_FIELD, "text", length=40),
        FieldSpec("Order", KEY_FIELD, "text", unique=True),
        FieldSpec("Order", "Amount__c", "currency"),
        FieldSpec("Order", "Currency__c", "text", length=3),
        FieldSpec("Order", "Payment_Terms_Days__c", "number"),
    ]


#: What the integration user must be able to do per sObject (describe's object flags).
SALESFORCE_OBJECT_ACCESS = {
    "Opportunity": ("queryable", "updateable"),
    "Task": ("queryable", "createable", "updateable"),
    "Order": ("queryable", "createable", "updateable"),
    "User": ("queryable",),
}
