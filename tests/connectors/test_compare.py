"""The compare rule both connectors apply before overwriting a field."""

from __future__ import annotations

import pytest

from connectors.compare import conflicts, same


@pytest.mark.parametrize(
    ("a", "b"),
    [("30", "30.0"), (30, "30"), (None, ""), ("", None), (" x ", "x"), (True, "true")],
)
def test_equal_as_the_crm_shows_them(a: object, b: object) -> None:
    """Numbers compare as numbers, empty and missing alike, text trimmed."""
    assert same(a, b)


@pytest.mark.parametrize(("a", "b"), [("30", "35"), ("", "0"), ("inf", "1e999"), ("a", "A")])
def test_different(a: object, b: object) -> None:
    """A changed value, empty against zero, infinities and text of another case differ."""
    assert not same(a, b)


def test_only_fields_being_written_and_changed_by_someone_else_conflict() -> None:
    """A field is a conflict when the CRM holds neither what Handoff saw nor what it is
    writing now; fields not being written are never conflicts."""
    found = conflicts(
        expected={"discount": "12", "stage": "new", "amount": "100", "owner": "a"},
        fields={"discount": 12, "stage": "negotiation", "owner": "b"},
        current={"discount": "35", "stage": "negotiation", "amount": "900"},
    )
    assert found == {"discount": "35", "owner": None}
