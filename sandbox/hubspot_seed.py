"""The records a fresh HubSpot sandbox store is seeded with: companies, contacts, deals
with owners and discounts (Handoff's demo portal), their associations, and products."""

from __future__ import annotations

SeedRecord = tuple[str, str, dict[str, str]]

SEED: list[SeedRecord] = [
    ("companies", "2001", {"name": "Acme Corp", "domain": "acme.example", "city": "Lyon"}),
    ("companies", "2002", {"name": "Globex", "domain": "globex.example", "city": "Oslo"}),
    ("contacts", "3001", {"email": "ada@acme.example", "firstname": "Ada", "lastname": "Byron"}),
    (
        "contacts",
        "3002",
        {"email": "hank@globex.example", "firstname": "Hank", "lastname": "Scorpio"},
    ),
    (
        "deals",
        "1001",
        {
            "dealname": "Acme Corp — platform rollout",
            "amount": "120000",
            "discount_percent": "30",
            "pipeline": "default",
            "dealstage": "appointmentscheduled",
            "handoff_owner_email": "sam.rep@example.com",
            "scope": "Platform rollout for 3 sites",
            "start_date": "2026-12-01",
            "site_notes": "Badge access via reception",
            "primary_contact": "ada@acme.example",
            "promised": "Go-live before Q1 close",
            "billing_contact": "ap@acme.example",
            "po_number": "PO-7781",
        },
    ),
    (
        "deals",
        "1002",
        {
            "dealname": "Globex — pilot",
            "amount": "18000",
            "discount_percent": "5",
            "pipeline": "default",
            "dealstage": "appointmentscheduled",
            "handoff_owner_email": "sam.rep@example.com",
            "scope": "Pilot",
            "start_date": "2026-12-15",
        },
    ),
    (
        "deals",
        "1003",
        {
            "dealname": "Initech — renewal",
            "amount": "45000",
            "discount_percent": "12",
            "pipeline": "default",
            "dealstage": "qualifiedtobuy",
            "handoff_owner_email": "rita.rep@example.com",
            "need_confirmed": "true",
        },
    ),
]
#: Products line items can name (``hs_product_id``), with price and unit cost.
SEED += [
    ("products", "4001", {"name": "Platform licence", "price": "40000", "hs_sku": "PLAT-1",
                          "hs_cost_of_goods_sold": "8000"}),
    ("products", "4002", {"name": "Onboarding days", "price": "1500", "hs_sku": "ONB-D",
                          "hs_cost_of_goods_sold": "900"}),
    ("products", "4003", {"name": "Premium support", "price": "12000", "hs_sku": "SUP-P",
                          "hs_cost_of_goods_sold": "4000"}),
]  # fmt: skip
SEED_ASSOCIATIONS = [
    ("companies", "2001", "deals", "1001"),
    ("contacts", "3001", "deals", "1001"),
    ("companies", "2002", "deals", "1002"),
    ("contacts", "3002", "deals", "1002"),
    ("contacts", "3001", "companies", "2001"),
    ("contacts", "3002", "companies", "2002"),
]
