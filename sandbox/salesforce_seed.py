"""The sandbox org's seed data: users, accounts, contacts, opportunities and products."""

from __future__ import annotations

PEOPLE = (
    ("handoff.integration", "Integration", "Handoff"),
    ("sam.rep", "Rep", "Sam"),
    ("maya.manager", "Manager", "Maya"),
    ("victor.vp", "Vp", "Victor"),
    ("carla.cfo", "Cfo", "Carla"),
    ("olga.ops", "Ops", "Olga"),
    ("bill.billing", "Billing", "Bill"),
    ("cole.collections", "Collections", "Cole"),
    ("lee.legal", "Legal", "Lee"),
    ("sol.salesops", "Salesops", "Sol"),
)

#: Who manages whom (`User.ManagerId`), set once every user exists.
MANAGERS = {"sam.rep": "maya.manager", "maya.manager": "victor.vp", "victor.vp": "carla.cfo"}


def seed_records() -> list[tuple[str, str, dict[str, object]]]:
    """(object, local name, fields) in creation order; ``@name`` refers to an earlier one."""
    out: list[tuple[str, str, dict[str, object]]] = []
    for login, last, first in PEOPLE:
        email = f"{login}@example.com"
        out.append(
            ("User", login, {"Username": email, "Email": email, "LastName": last,
                             "FirstName": first, "IsActive": True})
        )  # fmt: skip
    out += [
        ("Account", "acme", {"Name": "Acme Corp", "Industry": "Manufacturing"}),
        ("Account", "globex", {"Name": "Globex", "Industry": "Energy"}),
        ("Account", "initech", {"Name": "Initech", "Industry": "Software"}),
        ("Contact", "wile", {"LastName": "Coyote", "FirstName": "Wile",
                             "Email": "wile@acme.example", "AccountId": "@acme"}),
        ("Contact", "hank", {"LastName": "Scorpio", "FirstName": "Hank",
                             "Email": "hank@globex.example", "AccountId": "@globex"}),
        ("Opportunity", "acme-rollout", {
            "Name": "Acme rollout", "StageName": "Prospecting", "CloseDate": "2026-12-31",
            "Amount": 48000.0, "AccountId": "@acme", "OwnerId": "@sam.rep",
            # the demo deal: 30% needs the sales manager and the VP
            "Discount_Percent__c": 30.0, "Primary_Contact__c": "wile@acme.example",
            "Scope__c": "Platform rollout for 3 sites", "Start_Date__c": "2026-12-01",
            "Site_Notes__c": "Badge access via reception", "Promised__c": "Go-live in Q1",
            "Billing_Contact__c": "ap@acme.example", "PO_Number__c": "PO-7781"}),
        ("Opportunity", "globex-pilot", {
            "Name": "Globex pilot", "StageName": "Qualification", "CloseDate": "2026-10-15",
            "Amount": 12000.0, "AccountId": "@globex", "OwnerId": "@sam.rep",
            "Discount_Percent__c": 18.0, "Budget_Confirmed__c": True}),
        ("Opportunity", "initech-renewal", {
            "Name": "Initech renewal", "StageName": "Negotiation/Review",
            "CloseDate": "2026-09-30", "Amount": 30000.0, "AccountId": "@initech",
            "OwnerId": "@sam.rep", "Scope__c": "3 sites, 40 seats",
            "Start_Date__c": "2026-11-01", "Site_Notes__c": "Badge at reception",
            "Primary_Contact__c": "peter@initech.example", "Promised__c": "Go-live in 2 weeks",
            "Billing_Contact__c": "ap@initech.example", "PO_Number__c": "PO-4471"}),
    ]  # fmt: skip
    return out + _line_item_seed()


def _line_item_seed() -> list[tuple[str, str, dict[str, object]]]:
    """The standard price book, three products and the Acme rollout's lines (48,000)."""
    products = (
        ("platform", "Platform licence", "PLAT-100", "Software", 1000.0),
        ("onboarding", "Onboarding package", "ONB-200", "Services", 8000.0),
        ("support", "Premium support", "SUP-300", "Services", 2400.0),
    )
    out: list[tuple[str, str, dict[str, object]]] = [
        ("Pricebook2", "standard", {"Name": "Standard Price Book", "IsActive": True,
                                    "IsStandard": True}),
    ]  # fmt: skip
    for local, name, code, family, price in products:
        out.append(("Product2", local, {"Name": name, "ProductCode": code, "Family": family,
                                        "IsActive": True}))  # fmt: skip
        out.append(("PricebookEntry", f"{local}-std", {"Pricebook2Id": "@standard",
                    "Product2Id": f"@{local}", "UnitPrice": price, "IsActive": True}))  # fmt: skip
    out += [
        ("OpportunityLineItem", "acme-platform", {"OpportunityId": "@acme-rollout",
         "PricebookEntryId": "@platform-std", "Quantity": 40.0, "UnitPrice": 1000.0,
         "Cost__c": 12000.0}),
        ("OpportunityLineItem", "acme-onboarding", {"OpportunityId": "@acme-rollout",
         "PricebookEntryId": "@onboarding-std", "Quantity": 1.0, "UnitPrice": 8000.0,
         "Cost__c": 5000.0}),
    ]  # fmt: skip
    return out
