"""The sandbox's SOQL engine: grammar, literals, evaluation and Salesforce's error codes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from sandbox.salesforce_soql import (
    BoolOp,
    Compare,
    SoqlError,
    execute,
    parse,
    tokenize,
)
from sandbox.salesforce_soql_ast import Path

SCHEMA = {
    "Opportunity": {
        "Id": "id",
        "Name": "string",
        "StageName": "picklist",
        "Amount": "currency",
        "IsWon": "boolean",
        "CloseDate": "date",
        "SystemModstamp": "datetime",
    }
}
ROWS: list[dict[str, Any]] = [
    {"Id": "006A", "Name": "Acme", "StageName": "Prospecting", "Amount": 100.0,
     "IsWon": False, "CloseDate": "2026-01-10", "SystemModstamp": "2026-01-01T10:00:00.000+0000"},
    {"Id": "006B", "Name": "O'Brien & Co", "StageName": "Closed Won", "Amount": 500.0,
     "IsWon": True, "CloseDate": "2026-02-10", "SystemModstamp": "2026-01-01T11:00:00.000+0000"},
    {"Id": "006C", "Name": "globex 50%", "StageName": "Qualification", "Amount": None,
     "IsWon": False, "CloseDate": "2026-03-10", "SystemModstamp": "2026-01-01T12:00:00.000+0000"},
    {"Id": "006D", "Name": "Initech", "StageName": "Closed Lost", "Amount": 250.0,
     "IsWon": False, "CloseDate": "2026-04-10", "SystemModstamp": "2026-01-01T12:00:00.000+0000"},
]  # fmt: skip


def ids(soql: str) -> list[str]:
    query = parse(soql, SCHEMA)
    return [r["Id"] for r in execute(query, ROWS)]


def error_code(soql: str) -> str:
    with pytest.raises(SoqlError) as caught:
        parse(soql, SCHEMA)
    return caught.value.error_code


def test_not_binds_tighter_than_and() -> None:
    """NOT applies to the next condition only, not to the whole AND chain."""
    query = parse("SELECT Id FROM Opportunity WHERE NOT IsWon = true AND Amount > 200", SCHEMA)
    assert isinstance(query.where, BoolOp)
    assert query.where.op == "AND"
    assert query.where.items[0] == BoolOp(
        "NOT", (Compare(Path((), "IsWon", "boolean"), "=", True),)
    )
    assert ids("SELECT Id FROM Opportunity WHERE NOT IsWon = true AND Amount > 200") == ["006D"]


def test_parentheses_group_and_or() -> None:
    """Parentheses decide how AND and OR combine, in either nesting."""
    assert ids(
        "SELECT Id FROM Opportunity WHERE (Amount > 400 OR Amount < 150) AND IsWon = false"
    ) == ["006A"]
    assert ids(
        "SELECT Id FROM Opportunity WHERE Amount > 400 OR (Amount < 150 AND IsWon = false)"
    ) == ["006A", "006B"]
    assert ids("SELECT Id FROM Opportunity WHERE NOT (Amount > 150 OR Amount = null)") == ["006A"]


@pytest.mark.parametrize(
    "where",
    ["Amount > 1 AND Amount < 9 OR IsWon = true", "Amount > 1 OR Amount < 9 AND IsWon = true"],
)
def test_mixing_and_or_without_parentheses_is_malformed(where: str) -> None:
    """Like Salesforce, SOQL refuses AND and OR at one level without parentheses."""
    soql = "SELECT Id FROM Opportunity WHERE " + where  # noqa: S608 - a test query, no SQL
    assert error_code(soql) == "MALFORMED_QUERY"


def test_string_literals_unescape() -> None:
    """Backslash escapes in strings are decoded; '=' on text ignores case."""
    assert tokenize(r"'O\'Brien\n\\'")[0].value == "O'Brien\n\\"
    assert ids(r"SELECT Id FROM Opportunity WHERE Name = 'o\'brien & co'") == ["006B"]


def test_number_boolean_null_and_date_literals() -> None:
    """Numbers, booleans, null, dates and datetimes (with offsets) compare by type."""
    assert ids("SELECT Id FROM Opportunity WHERE Amount >= 250.0 AND Amount <= 500") == [
        "006B",
        "006D",
    ]
    assert ids("SELECT Id FROM Opportunity WHERE Amount = null") == ["006C"]
    assert ids("SELECT Id FROM Opportunity WHERE Amount != null AND IsWon = TRUE") == ["006B"]
    assert ids("SELECT Id FROM Opportunity WHERE CloseDate > 2026-02-10") == ["006C", "006D"]
    assert ids("SELECT Id FROM Opportunity WHERE SystemModstamp >= 2026-01-01T12:00:00+01:00") == [
        "006B",
        "006C",
        "006D",
    ]
    tokens = tokenize("2026-01-01T10:00:00Z 2026-01-01 -3 4.5")
    assert [t.value for t in tokens] == [
        datetime(2026, 1, 1, 10, tzinfo=UTC),
        date(2026, 1, 1),
        -3,
        4.5,
    ]


def test_in_and_not_in() -> None:
    """IN and NOT IN take a parenthesised list of literals."""
    won_or_lost = "SELECT Id FROM Opportunity WHERE StageName IN ('Closed Won', 'Closed Lost')"
    neither = "SELECT Id FROM Opportunity WHERE StageName NOT IN ('Closed Won', 'Closed Lost')"
    assert ids(won_or_lost) == ["006B", "006D"]
    assert ids(neither) == ["006A", "006C"]


def test_like_wildcards_and_escapes() -> None:
    """LIKE: % and _ are wildcards, case-insensitive; an escaped \\% is a literal %."""
    assert ids("SELECT Id FROM Opportunity WHERE Name LIKE 'a%'") == ["006A"]
    assert ids("SELECT Id FROM Opportunity WHERE Name LIKE '_nitech'") == ["006D"]
    assert ids(r"SELECT Id FROM Opportunity WHERE Name LIKE '%50\%'") == ["006C"]
    assert ids(r"SELECT Id FROM Opportunity WHERE Name LIKE '%5\%'") == []


def test_order_by_direction_and_nulls() -> None:
    """ORDER BY sorts by several fields, DESC, with NULLS FIRST/LAST."""
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount") == ["006C", "006A", "006D", "006B"]
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount DESC") == [
        "006B",
        "006D",
        "006A",
        "006C",
    ]
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount ASC NULLS LAST")[-1] == "006C"
    assert ids("SELECT Id FROM Opportunity ORDER BY SystemModstamp DESC, Id ASC") == [
        "006C",
        "006D",
        "006B",
        "006A",
    ]


def test_limit_and_offset() -> None:
    """LIMIT and OFFSET slice the ordered result."""
    assert ids("SELECT Id FROM Opportunity ORDER BY Id LIMIT 2 OFFSET 1") == ["006B", "006C"]
    assert ids("SELECT Id FROM Opportunity ORDER BY Id LIMIT 0") == []


def test_names_are_case_insensitive_and_resolved() -> None:
    """Keywords, objects and fields match any case; fields come back in schema spelling."""
    query = parse("select id, NAME from opportunity where amount > 1 order by name", SCHEMA)
    assert (query.object, query.fields) == ("Opportunity", ["Id", "Name"])


def test_count_query() -> None:
    """SELECT COUNT() parses as a count-only query."""
    assert parse("SELECT COUNT() FROM Opportunity WHERE IsWon = false", SCHEMA).count_only


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id Opportunity",
        "SELECT Id, FROM Opportunity",
        "SELECT Id FROM Opportunity WHERE",
        "SELECT Id FROM Opportunity WHERE Name = 'open",
        "SELECT Id FROM Opportunity WHERE (Amount > 1",
        "SELECT Id FROM Opportunity LIMIT -1",
        "SELECT Id FROM Opportunity LIMIT ten",
        "SELECT Id FROM Opportunity WHERE Name = 'a' EXTRA",
        "SELECT Id FROM Opportunity WHERE Name ~ 'a'",
        "SELECT Id FROM Opportunity WHERE Name = 'bad \\q escape'",
    ],
)
def test_malformed_queries_are_malformed_query(soql: str) -> None:
    """Syntax errors carry Salesforce's MALFORMED_QUERY code."""
    assert error_code(soql) == "MALFORMED_QUERY"


def test_unknown_names_and_wrong_literal_types() -> None:
    """Unknown fields and mistyped literals are INVALID_FIELD; unknown objects INVALID_TYPE."""
    assert error_code("SELECT Nope__c FROM Opportunity") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Opportunity ORDER BY Nope__c") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Opportunity WHERE Amount = '12'") == "INVALID_FIELD"
    assert (
        error_code("SELECT Id FROM Opportunity WHERE SystemModstamp > '2026-01-01'")
        == "INVALID_FIELD"
    )
    assert error_code("SELECT Id FROM Widget__c") == "INVALID_TYPE"


def test_ids_match_in_15_and_18_character_forms() -> None:
    """An 18-character id literal matches the record's 15-character form and vice versa."""
    rows = [{**ROWS[0], "Id": "006Hd0000000001IAA"}, {**ROWS[1], "Id": "006Hd0000000002IAA"}]
    query = parse("SELECT Id FROM Opportunity WHERE Id IN ('006Hd0000000002')", SCHEMA)
    assert [r["Id"] for r in execute(query, rows)] == ["006Hd0000000002IAA"]
    query = parse("SELECT Id FROM Opportunity WHERE Id > '006Hd0000000001IAA'", SCHEMA)
    assert [r["Id"] for r in execute(query, rows)] == ["006Hd0000000002IAA"]
