"""The HubSpot sandbox's portal: object types, property definitions, the deal pipeline,
association types and the records a fresh store is seeded with.

Property definitions follow the CRM v3 Properties API (``name, label, type, fieldType,
groupName, description, options, hasUniqueValue...``). Handoff's canonical deal fields
are custom deal properties named after the canonical field (``start_date``...); the deal
owner is the text property ``handoff_owner_email`` (HubSpot's real owner is an owner id;
the sandbox keeps the email so no owners API is needed). ``handoff_key`` is a unique
property on notes, tasks and orders, the idempotency key of Handoff's writes. The seeded
records live in `hubspot_seed` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.hubspot_seed import SEED as SEED
from sandbox.hubspot_seed import SEED_ASSOCIATIONS as SEED_ASSOCIATIONS
from sandbox.hubspot_seed import SeedRecord as SeedRecord

#: Object type name → HubSpot object type id. Paths accept either.
OBJECT_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tasks": "0-27",
    "notes": "0-46",
    "orders": "0-123",
    "products": "0-7",
    "line_items": "0-8",
}
TYPE_NAMES = {v: k for k, v in OBJECT_TYPE_IDS.items()}
#: Singular names (used in messages such as "Could not get some DEAL objects").
SINGULAR = {
    "contacts": "CONTACT",
    "companies": "COMPANY",
    "deals": "DEAL",
    "tasks": "TASK",
    "notes": "NOTE",
    "orders": "ORDER",
    "products": "PRODUCT",
    "line_items": "LINE_ITEM",
}

#: HUBSPOT_DEFINED default association type ids, (from, to) → typeId.
DEFAULT_ASSOCIATIONS = {
    ("notes", "deals"): 214,
    ("deals", "notes"): 213,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
    ("orders", "deals"): 512,
    ("deals", "orders"): 511,
    ("contacts", "deals"): 4,
    ("deals", "contacts"): 3,
    ("companies", "deals"): 342,
    ("deals", "companies"): 341,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("notes", "contacts"): 202,
    ("contacts", "notes"): 201,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
    ("line_items", "deals"): 20,
    ("deals", "line_items"): 19,
}
#: Other HUBSPOT_DEFINED association types, (from, to) → {typeId: label}.
LABELLED_ASSOCIATIONS = {
    ("deals", "companies"): {5: "Primary"},
    ("companies", "deals"): {6: "Primary"},
}
#: Properties HubSpot's free-text search ``query`` looks in, by object type.
SEARCHABLE = {
    "deals": ("dealname",),
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "city"),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject", "hs_task_body"),
    "orders": ("hs_order_name",),
    "products": ("name", "hs_sku", "description"),
    "line_items": ("name", "hs_sku"),
}
#: Properties a create must set, by object type.
REQUIRED_ON_CREATE = {"notes": ("hs_timestamp",), "tasks": ("hs_timestamp",)}
#: Names of properties HubSpot itself defines (besides every ``hs_`` property): they
#: cannot be archived through the Properties API.
HUBSPOT_DEFINED_NAMES = frozenset(
    (
        *("createdate", "dealname", "amount", "pipeline", "dealstage", "closedate"),
        *("hubspot_owner_id", "email", "firstname", "lastname", "phone", "company", "name"),
        *("domain", "city", "quantity", "price", "description", "discount"),
    )
)
OWNER_EMAIL_PROPERTY = "handoff_owner_email"
KEY_PROPERTY = "handoff_key"
SYSTEM_PROPERTIES = ("hs_object_id", "createdate", "hs_lastmodifieddate")


@dataclass(frozen=True)
class PropertyDef:
    """One property definition, as ``GET /crm/v3/properties/{objectType}`` lists it."""

    name: str
    label: str
    type: str = "string"  # string | number | bool | date | datetime | enumeration
    field_type: str = "text"
    group: str = "handoff"
    unique: bool = False
    read_only: bool = False
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    description: str = ""
    display_order: int = -1
    hidden: bool = False
    created_at: str = "2024-01-01T00:00:00.000Z"
    updated_at: str = "2024-01-01T00:00:00.000Z"
    archived_at: str | None = None

    @property
    def hubspot_defined(self) -> bool:
        return self.name.startswith("hs_") or self.name in HUBSPOT_DEFINED_NAMES

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group,
            "description": self.description,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(self.options)
            ],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only,
            "archived": self.archived_at is not None,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "modificationMetadata": {
                "archivable": not self.read_only and not self.hubspot_defined,
                "readOnlyDefinition": self.read_only or self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if self.archived_at is not None:
            body["archivedAt"] = self.archived_at
        return body


def _text(name: str, label: str = "", **kw: Any) -> PropertyDef:
    return PropertyDef(name, label or name.replace("_", " ").capitalize(), **kw)


def _number(name: str, label: str = "") -> PropertyDef:
    return _text(name, label, type="number", field_type="number")


def _checkbox(name: str) -> PropertyDef:
    opts = (("true", "Yes"), ("false", "No"))
    return _text(name, type="bool", field_type="booleancheckbox", options=opts)


def _date(name: str) -> PropertyDef:
    return _text(name, type="date", field_type="date")


def _datetime(name: str, label: str = "", **kw: Any) -> PropertyDef:
    return _text(name, label, type="datetime", field_type="date", **kw)


PIPELINE_STAGES = (
    # id, label, probability, closed
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)


def _system() -> list[PropertyDef]:
    return [
        _number("hs_object_id", "Record ID"),
        _datetime("createdate", "Create date", read_only=True),
        _datetime("hs_lastmodifieddate", "Last modified date", read_only=True),
    ]


HANDOFF_DEAL_TEXT = """handoff_stage handoff_status handoff_owner scope site_notes primary_contact
    promised billing_contact po_number handoff_last_write handoff_owner_email handoff_key"""
HANDOFF_DEAL_NUMBERS = "approved_discount real_margin cost discount_percent"
EVIDENCE_CHECKBOXES = "need_confirmed budget_confirmed decision_maker_identified timeline_confirmed"

PROPERTIES: dict[str, list[PropertyDef]] = {
    "deals": [
        *_system(),
        _text("dealname", "Deal name", group="dealinformation"),
        _number("amount", "Amount"),
        _text(
            "pipeline",
            "Pipeline",
            type="enumeration",
            field_type="select",
            options=(("default", "Sales Pipeline"),),
        ),
        _text(
            "dealstage",
            "Deal stage",
            type="enumeration",
            field_type="radio",
            options=tuple((s[0], s[1]) for s in PIPELINE_STAGES),
        ),
        _datetime("closedate", "Close date"),
        _text("hubspot_owner_id", "Deal owner"),
        *[_text(n) for n in HANDOFF_DEAL_TEXT.split()],
        *[_number(n) for n in HANDOFF_DEAL_NUMBERS.split()],
        *[_checkbox(n) for n in EVIDENCE_CHECKBOXES.split()],
        _datetime("handoff_due_at"),
        _date("start_date"),
        _date("contract_end_date"),
    ],
    "contacts": [
        *_system(),
        _text("email", "Email", unique=True),
        _text("firstname"),
        _text("lastname"),
        _text("phone"),
        _text("company"),
    ],
    "companies": [
        *_system(),
        _text("name", "Name"),
        _text("domain", "Company domain name"),
        _text("city"),
    ],
    "notes": [
        *_system(),
        _datetime("hs_timestamp", "Activity date"),
        _text("hs_note_body", "Note body", field_type="html"),
        _text(KEY_PROPERTY, "Handoff key", unique=True),
    ],
    "tasks": [
        *_system(),
        _datetime("hs_timestamp", "Due date"),
        _text("hs_task_subject", "Task title"),
        _text("hs_task_body", "Task notes"),
        _text(
            "hs_task_status",
            "Task status",
            type="enumeration",
            field_type="select",
            options=(
                ("NOT_STARTED", "Not started"),
                ("IN_PROGRESS", "In progress"),
                ("WAITING", "Waiting"),
                ("COMPLETED", "Completed"),
            ),
        ),
        _text(
            "hs_task_priority",
            "Priority",
            type="enumeration",
            field_type="select",
            options=(("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High")),
        ),
        _text("hubspot_owner_id", "Assigned to"),
        _text(OWNER_EMAIL_PROPERTY, "Owner email"),
        _text(KEY_PROPERTY, "Handoff key", unique=True),
    ],
    "orders": [
        *_system(),
        _text("hs_order_name", "Name"),
        _number("hs_total_price", "Total"),
        _text("hs_currency_code", "Currency"),
        _number("handoff_payment_terms_days"),
        _text(KEY_PROPERTY, "Handoff key", unique=True),
    ],
    "products": [
        *_system(),
        _text("name", "Name"),
        _text("description", "Description"),
        _number("price", "Unit price"),
        _text("hs_sku", "SKU"),
        _number("hs_cost_of_goods_sold", "Unit cost"),
    ],
    "line_items": [
        *_system(),
        _text("name", "Name"),
        _text("description", "Description"),
        _text("hs_product_id", "Product ID"),
        _text("hs_sku", "SKU"),
        _number("quantity", "Quantity"),
        _number("price", "Unit price"),
        _number("hs_discount_percentage", "Discount percentage"),
        _number("discount", "Unit discount"),
        _number("hs_cost_of_goods_sold", "Unit cost"),
        _text("currency", "Currency"),
        PropertyDef("amount", "Net price", "number", "number", read_only=True),
        _text(KEY_PROPERTY, "Handoff key", unique=True),
    ],
}
PROPERTY_INDEX = {ot: {p.name: p for p in props} for ot, props in PROPERTIES.items()}

#: What ``GET`` returns when no ``properties=`` is given (plus the system properties).
DEFAULT_PROPERTIES = {
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage"),
    "contacts": ("firstname", "lastname", "email"),
    "companies": ("name", "domain"),
    "notes": ("hs_timestamp", "hs_note_body"),
    "tasks": ("hs_timestamp", "hs_task_subject", "hs_task_status"),
    "orders": ("hs_order_name", "hs_total_price", "hs_currency_code"),
    "products": ("name", "price", "description"),
    "line_items": ("name", "quantity", "price", "amount"),
}


def pipeline_json() -> dict[str, Any]:
    """The default deal pipeline as ``GET /crm/v3/pipelines/deals/default`` returns it."""
    stamp = "2024-01-01T00:00:00Z"
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "archived": False,
        "createdAt": stamp,
        "updatedAt": stamp,
        "stages": [
            {
                "id": sid,
                "label": label,
                "displayOrder": i,
                "archived": False,
                "metadata": {"isClosed": str(closed).lower(), "probability": prob},
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            for i, (sid, label, prob, closed) in enumerate(PIPELINE_STAGES)
        ],
    }
