"""Fields the org derives itself: compound names, and opportunity products as Salesforce
derives them: price book entries and line items.

A line item takes its product, list price and name from its price book entry (found from
``Product2Id`` in the opportunity's price book when no entry is given). ``UnitPrice`` or
``TotalPrice`` is given, never both; ``Subtotal = Quantity * UnitPrice`` and ``TotalPrice =
Subtotal * (1 - Discount/100)``. The opportunity's ``Amount`` is the sum of its lines'
``TotalPrice``. A custom price book entry needs the product's standard price first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.salesforce_errors import SfError

if TYPE_CHECKING:
    from sandbox.salesforce_store import Record, Store


def _integrity(detail: str, field: str) -> SfError:
    return SfError(
        400, "FIELD_INTEGRITY_EXCEPTION", f"field integrity exception: {detail}", [field]
    )


def before_write(
    store: Store, obj: str, record: Record, values: Record, *, creating: bool, user_id: str
) -> None:
    """Fill and check the derived fields of `record` (about to be written)."""
    if obj in ("Contact", "User"):  # a compound name, as the org derives it
        record["Name"] = f"{record.get('FirstName') or ''} {record['LastName']}".strip()
    elif obj == "OpportunityLineItem":
        _line(store, record, values, creating=creating, user_id=user_id)
    elif obj == "PricebookEntry" and creating:
        _entry(store, record)


def after_write(store: Store, obj: str, record: Record, user_id: str) -> None:
    """Roll a line item's change up into its opportunity's Amount."""
    if obj != "OpportunityLineItem":
        return
    opp_id = str(record["OpportunityId"])
    found = store.raw(opp_id)
    if found is None or found[1].get("IsDeleted"):
        return
    lines = store.find("OpportunityLineItem", "OpportunityId", opp_id)
    total = round(sum(float(line.get("TotalPrice") or 0.0) for line in lines), 2)
    if found[1].get("Amount") != total:
        store.set_fields("Opportunity", opp_id, {"Amount": total}, user_id)


def _standard_book(store: Store) -> str:
    books = [b for b in store.records("Pricebook2") if b.get("IsStandard")]
    if not books:
        raise SfError(400, "STANDARD_PRICE_NOT_DEFINED", "No standard price book exists")
    return str(books[0]["Id"])


def _entry(store: Store, record: Record) -> None:
    product = store.get("Product2", record["Product2Id"])
    book = str(record["Pricebook2Id"])
    entries = store.find("PricebookEntry", "Product2Id", product["Id"])
    if any(e["Pricebook2Id"] == book for e in entries):
        raise SfError(
            400,
            "DUPLICATE_VALUE",
            "This price definition already exists in this price book",
            ["Pricebook2Id"],
        )
    standard = _standard_book(store)
    if book != standard and not any(e["Pricebook2Id"] == standard for e in entries):
        raise SfError(
            400,
            "STANDARD_PRICE_NOT_DEFINED",
            "Before creating a custom price, create a standard price.",
            [],
        )
    record.update(Name=product["Name"], ProductCode=product.get("ProductCode"))


def _line(store: Store, record: Record, values: Record, *, creating: bool, user_id: str) -> None:
    opp = store.get("Opportunity", record["OpportunityId"])
    if creating:
        entry = _entry_for_line(store, record, opp)
        product = store.get("Product2", entry["Product2Id"])
        record.update(
            PricebookEntryId=entry["Id"],
            Product2Id=entry["Product2Id"],
            ListPrice=entry["UnitPrice"],
            Name=f"{opp['Name']} {product['Name']}"[:376],
            ProductCode=product.get("ProductCode"),
        )
        if not opp.get("Pricebook2Id"):
            store.set_fields(
                "Opportunity", opp["Id"], {"Pricebook2Id": entry["Pricebook2Id"]}, user_id
            )
    _prices(record, values, creating=creating)


def _entry_for_line(store: Store, record: Record, opp: Record) -> Record:
    entry_id, product_id = record.get("PricebookEntryId"), record.get("Product2Id")
    if entry_id:
        entry = store.get("PricebookEntry", entry_id)
        if product_id and product_id != entry["Product2Id"]:
            raise _integrity(
                "Product2Id (product doesn't match the price book entry)", "Product2Id"
            )
    elif product_id:
        book = opp.get("Pricebook2Id") or _standard_book(store)
        found = [
            e
            for e in store.find("PricebookEntry", "Product2Id", product_id)
            if e["Pricebook2Id"] == book and e.get("IsActive")
        ]
        if not found:
            raise _integrity(
                "PricebookEntryId (no active price book entry for this product in the "
                "opportunity's price book)",
                "PricebookEntryId",
            )
        entry = found[0]
    else:
        raise SfError(
            400,
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [PricebookEntryId]",
            ["PricebookEntryId"],
        )
    if not entry.get("IsActive"):
        raise _integrity("PricebookEntryId (pricebook entry is inactive)", "PricebookEntryId")
    if opp.get("Pricebook2Id") and entry["Pricebook2Id"] != opp["Pricebook2Id"]:
        raise _integrity(
            "PricebookEntryId (pricebook entry is in a different pricebook than the one "
            "assigned to the opportunity)",
            "PricebookEntryId",
        )
    return entry


def _prices(record: Record, values: Record, *, creating: bool) -> None:
    quantity = float(record.get("Quantity") or 0.0)
    if not quantity:
        raise _integrity("Quantity (quantity must be nonzero)", "Quantity")
    discount = float(record.get("Discount") or 0.0)
    if not 0.0 <= discount <= 100.0:
        raise _integrity("Discount (discount must be between 0 and 100)", "Discount")
    given_total: Any = values.get("TotalPrice")
    if values.get("UnitPrice") is not None and given_total is not None:
        raise _integrity(
            "TotalPrice (only one of UnitPrice and TotalPrice may be set)", "TotalPrice"
        )
    factor = quantity * (1 - discount / 100)
    if given_total is not None:
        record["UnitPrice"] = round(float(given_total) / factor, 2) if factor else 0.0
    elif record.get("UnitPrice") is None:
        if creating:
            raise _integrity("unknown (must specify either UnitPrice or TotalPrice)", "UnitPrice")
        return
    subtotal = round(quantity * float(record["UnitPrice"]), 2)
    record.update(Subtotal=subtotal, TotalPrice=round(subtotal * (1 - discount / 100), 2))
