"""The sandbox org's schema (objects, fields, key prefixes) and its seed data.

Field types use the describe names (``string``, ``picklist``, ``currency``...). Custom
fields carry Handoff's canonical facts; ``Handoff_Key__c`` is a unique external id on
Task and Order so writes can be upserted idempotently. Classic ``Note`` takes no custom
fields, as in a real org: Handoff logs timeline entries as completed Tasks
(``Handoff_Kind__c = 'note'``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
ORDER_STATUSES = ("Draft", "Activated")
SYSTEM_FIELDS: tuple[str, ...] = (
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
)
SYSTEM_FIELDS += ("SystemModstamp", "IsDeleted")
#: Fields only the org itself sets (seed data may set them; the API may not).
SYSTEM_ONLY = ("IsStandard",)


@dataclass(frozen=True)
class FieldDef:
    """One field as describe reports it, plus what the sandbox validates."""

    name: str
    type: str
    length: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    picklist: tuple[str, ...] = ()
    child_relationship: str = ""
    calculated: bool = False

    @property
    def relationship_name(self) -> str:
        """The parent relationship a reference field opens: AccountId → Account, X__c → X__r."""
        if self.type != "reference":
            return ""
        if self.name.endswith("__c"):
            return self.name[:-3] + "__r"
        return self.name[:-2] if self.name.endswith("Id") else ""

    @property
    def label(self) -> str:
        return self.name.removesuffix("__c").replace("_", " ")

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "custom": self.name.endswith("__c"),
            "nillable": not self.required and self.type != "boolean",
            "createable": self.createable,
            "updateable": self.updateable,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.name == "Id" or self.external_id,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name or None,
            "calculated": self.calculated,
            "filterable": self.type != "textarea",
            "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "currency", "percent"),
            "defaultedOnCreate": self.type == "boolean" or self.name in SYSTEM_FIELDS,
            "restrictedPicklist": bool(self.picklist),
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "value": v}
                for v in self.picklist
            ],
        }


@dataclass(frozen=True)
class ObjectDef:
    """An sObject type: its name, key prefix and fields (system fields included)."""

    name: str
    prefix: str
    fields: tuple[FieldDef, ...]
    by_name: dict[str, FieldDef] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name.lower(): f for f in self.fields})

    def get(self, name: str) -> FieldDef | None:
        return self.by_name.get(name.lower())


def child_relationships(obj: str) -> list[tuple[str, str, FieldDef]]:
    """(relationship name, child object, the child's reference field) pointing at `obj`."""
    return [
        (f.child_relationship, child.name, f)
        for child in OBJECTS.values()
        for f in child.fields
        if f.child_relationship and obj in f.reference_to
    ]


def _s(name: str, length: int = 255, **kw: object) -> FieldDef:
    return FieldDef(name, "string", length, **kw)  # type: ignore[arg-type]


def _ref(name: str, *to: str, required: bool = False, child: str = "") -> FieldDef:
    return FieldDef(
        name, "reference", 18, required=required, reference_to=to, child_relationship=child
    )


def _text(name: str) -> FieldDef:
    return FieldDef(name, "textarea", 32000)


def _key(unique: bool = True) -> FieldDef:
    return FieldDef("Handoff_Key__c", "string", 255, external_id=True, unique=unique)


def _object(name: str, prefix: str, *fields: FieldDef) -> ObjectDef:
    readonly = {"createable": False, "updateable": False}
    system = (
        FieldDef("Id", "id", 18, **readonly),  # type: ignore[arg-type]
        FieldDef("IsDeleted", "boolean", **readonly),  # type: ignore[arg-type]
        FieldDef("CreatedDate", "datetime", **readonly),  # type: ignore[arg-type]
        FieldDef("CreatedById", "reference", 18, reference_to=("User",), **readonly),  # type: ignore[arg-type]
        FieldDef("LastModifiedDate", "datetime", **readonly),  # type: ignore[arg-type]
        FieldDef("LastModifiedById", "reference", 18, reference_to=("User",), **readonly),  # type: ignore[arg-type]
        FieldDef("SystemModstamp", "datetime", **readonly),  # type: ignore[arg-type]
    )
    return ObjectDef(name, prefix, system + fields)


_READONLY = {"createable": False, "updateable": False}
LINE_ITEM_OBJECTS = (
    _object(
        "Product2",
        "01t",
        _s("Name", required=True),
        _s("ProductCode"),
        _text("Description"),
        _s("Family", 40),
        FieldDef("IsActive", "boolean"),
    ),
    _object(
        "Pricebook2",
        "01s",
        _s("Name", required=True),
        _text("Description"),
        FieldDef("IsActive", "boolean"),
        FieldDef("IsStandard", "boolean", **_READONLY),  # type: ignore[arg-type]
    ),
    _object(
        "PricebookEntry",
        "01u",
        _s("Name", **_READONLY),
        _ref("Pricebook2Id", "Pricebook2", required=True, child="PricebookEntries"),
        _ref("Product2Id", "Product2", required=True, child="PricebookEntries"),
        FieldDef("UnitPrice", "currency", required=True),
        FieldDef("IsActive", "boolean"),
        FieldDef("UseStandardPrice", "boolean"),
        _s("ProductCode", **_READONLY),
    ),
    _object(
        "OpportunityLineItem",
        "00k",
        _ref("OpportunityId", "Opportunity", required=True, child="OpportunityLineItems"),
        FieldDef(
            "PricebookEntryId",
            "reference",
            18,
            updateable=False,
            reference_to=("PricebookEntry",),
            child_relationship="OpportunityLineItems",
        ),
        FieldDef("Product2Id", "reference", 18, updateable=False, reference_to=("Product2",)),
        _s("Name", 376, **_READONLY),
        _s("ProductCode", **_READONLY),
        FieldDef("Quantity", "double", required=True),
        FieldDef("UnitPrice", "currency"),
        FieldDef("ListPrice", "currency", **_READONLY),  # type: ignore[arg-type]
        FieldDef("Discount", "percent"),
        FieldDef("Subtotal", "currency", calculated=True, **_READONLY),  # type: ignore[arg-type]
        FieldDef("TotalPrice", "currency"),
        _s("Description"),
        FieldDef("ServiceDate", "date"),
        FieldDef("Cost__c", "currency"),
    ),
)

OBJECTS: dict[str, ObjectDef] = {
    o.name: o
    for o in (
        _object(
            "User",
            "005",
            _s("Username", 80, required=True, unique=True),
            _s("LastName", 80, required=True),
            _s("FirstName", 40),
            _s("Name", 121, **_READONLY),
            FieldDef("Email", "email", 128, required=True),
            FieldDef("IsActive", "boolean"),
            _ref("ManagerId", "User"),
        ),
        _object(
            "Account",
            "001",
            _s("Name", required=True),
            _s("Industry", 40),
            _s("Legacy_Id__c", 40, external_id=True),
            _ref("OwnerId", "User"),
        ),
        _object(
            "Contact",
            "003",
            _s("LastName", 80, required=True),
            _s("FirstName", 40),
            _s("Name", 121, **_READONLY),
            FieldDef("Email", "email", 80),
            _ref("AccountId", "Account", child="Contacts"),
            _ref("OwnerId", "User"),
        ),
        _object(
            "Opportunity",
            "006",
            _s("Name", 120, required=True),
            FieldDef("StageName", "picklist", 255, required=True, picklist=STAGES),
            FieldDef("CloseDate", "date", required=True),
            FieldDef("Amount", "currency"),
            _ref("AccountId", "Account", child="Opportunities"),
            _ref("Pricebook2Id", "Pricebook2", child="Opportunities"),
            _ref("OwnerId", "User"),
            FieldDef("Discount_Percent__c", "percent"),
            FieldDef("Approved_Discount__c", "percent"),
            FieldDef("Real_Margin__c", "percent"),
            FieldDef("Cost__c", "currency"),
            _s("Handoff_Stage__c", 40),
            _s("Handoff_Status__c", 80),
            FieldDef("Handoff_Owner__c", "email", 80),
            FieldDef("Handoff_Due_At__c", "datetime"),
            _text("Scope__c"),
            FieldDef("Start_Date__c", "date"),
            FieldDef("Contract_End_Date__c", "date"),
            _text("Site_Notes__c"),
            _s("Primary_Contact__c"),
            _text("Promised__c"),
            _s("Billing_Contact__c"),
            _s("PO_Number__c", 40),
            FieldDef("Need_Confirmed__c", "boolean"),
            FieldDef("Budget_Confirmed__c", "boolean"),
            FieldDef("Decision_Maker_Identified__c", "boolean"),
            FieldDef("Timeline_Confirmed__c", "boolean"),
            _key(unique=False),
        ),
        _object(
            "Task",
            "00T",
            _s("Subject"),
            _text("Description"),
            FieldDef("Status", "picklist", 40, picklist=TASK_STATUSES),
            FieldDef("Priority", "picklist", 40, picklist=("High", "Normal", "Low")),
            FieldDef("ActivityDate", "date"),
            FieldDef("IsReminderSet", "boolean"),
            FieldDef("ReminderDateTime", "datetime"),
            _ref("OwnerId", "User"),
            _ref("WhatId", "Opportunity", "Account", "Order", child="Tasks"),
            _ref("WhoId", "Contact", child="Tasks"),
            _s("Handoff_Kind__c", 40),
            _key(),
        ),
        _object(
            "Note",
            "002",
            _s("Title", 80, required=True),
            FieldDef("Body", "textarea", 32000),
            FieldDef("IsPrivate", "boolean"),
            _ref(
                "ParentId",
                "Opportunity",
                "Account",
                "Contact",
                "Order",
                required=True,
                child="Notes",
            ),
            _ref("OwnerId", "User"),
        ),
        _object(
            "Order",
            "801",
            _s("Name", 80),
            _ref("AccountId", "Account", required=True, child="Orders"),
            _ref("OpportunityId", "Opportunity", child="Orders"),
            FieldDef("EffectiveDate", "date", required=True),
            FieldDef("Status", "picklist", 40, required=True, picklist=ORDER_STATUSES),
            FieldDef("Description", "textarea", 32000),
            FieldDef("Amount__c", "currency"),
            _s("Currency__c", 3),
            FieldDef("Payment_Terms_Days__c", "int"),
            _ref("OwnerId", "User"),
            _key(),
        ),
        *LINE_ITEM_OBJECTS,
    )
}

#: The integration user every sandbox login runs as unless the username says otherwise.
API_USERNAME = "handoff.integration@example.com"
#: Its password and security token for the SOAP and password flows.
API_PASSWORD = "handoff-sandbox"  # noqa: S105 - fixed sandbox credentials, documented
API_SECURITY_TOKEN = "SANDBOXTOKEN"  # noqa: S105
#: A connected app that is registered on a fresh store (client credentials run as API user).
CONSUMER_KEY = "handoff-sandbox-consumer"
CONSUMER_SECRET = "handoff-sandbox-secret"  # noqa: S105
