"""The CRM search engine of the HubSpot sandbox: filter groups, sorts and ``after`` paging.

``filterGroups`` are ORed, the filters inside one group are ANDed, as HubSpot documents.
Values compare by the property's type: numbers numerically, dates and datetimes by
instant (ISO text or epoch milliseconds), everything else as case-insensitive text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sandbox.hubspot_schema import PropertyDef

OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
)
MAX_GROUPS, MAX_FILTERS, MAX_LIMIT = 5, 6, 200
#: HubSpot serves at most this many results of one search; paging past it is a 400.
RESULT_CAP = 10_000


class SearchError(ValueError):
    """A search request HubSpot would refuse with VALIDATION_ERROR."""


def to_epoch_ms(text: str) -> int:
    """Epoch milliseconds from ``1714560000000``, ``2024-05-01T12:00:00.000Z`` or a date."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        return int(moment.timestamp() * 1000)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _key(pdef: PropertyDef | None, text: str) -> Any:
    kind = pdef.type if pdef else "string"
    if kind == "number":
        return float(text)
    if kind in ("date", "datetime"):
        return to_epoch_ms(text)
    return text.lower()


def _matches(
    props: Mapping[str, str | None], flt: Mapping[str, Any], pdef: PropertyDef | None
) -> bool:
    op = str(flt.get("operator", "EQ")).upper()
    value = props.get(str(flt.get("propertyName")))
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN") and value in (None, ""):
        return True
    if value in (None, ""):
        return False
    assert value is not None
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = re.escape(str(flt.get("value", "")).lower()).replace(r"\*", ".*")
        found = any(re.fullmatch(pattern, tok) for tok in re.split(r"[\s,;]+", value.lower()))
        return found if op == "CONTAINS_TOKEN" else not found
    mine = _key(pdef, value)
    if op in ("IN", "NOT_IN"):
        inside = mine in {_key(pdef, str(v)) for v in flt.get("values") or []}
        return inside if op == "IN" else not inside
    other = _key(pdef, str(flt.get("value", "")))
    if op == "BETWEEN":
        return bool(other <= mine <= _key(pdef, str(flt.get("highValue", ""))))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda a, b: a == b,
        "NEQ": lambda a, b: a != b,
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    return compare[op](mine, other)


def _validate(groups: list[Any], props: Mapping[str, PropertyDef]) -> None:
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"too many filterGroups: {len(groups)} (max {MAX_GROUPS})")
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchError("each filterGroup needs a list of filters")
        if len(filters) > MAX_FILTERS:
            raise SearchError(f"too many filters in a group: {len(filters)} (max {MAX_FILTERS})")
        for flt in filters:
            if not isinstance(flt, dict):
                raise SearchError("each filter must be an object")
            op = str(flt.get("operator", "EQ")).upper()
            if op not in OPERATORS:
                raise SearchError(f"unknown operator {op!r} (allowed: {', '.join(OPERATORS)})")
            if flt.get("propertyName") not in props:
                raise SearchError(f"unknown property {flt.get('propertyName')!r} in a filter")
            if op in ("IN", "NOT_IN") and not isinstance(flt.get("values"), list):
                raise SearchError(f"operator {op} needs 'values', a list")


def _sort_spec(sorts: list[Any]) -> tuple[str, bool]:
    """(property, descending) from ``["-createdate"]`` or ``[{"propertyName","direction"}]``."""
    if not sorts:
        return "hs_object_id", False
    first = sorts[0]
    if isinstance(first, dict):
        name = str(first.get("propertyName", "hs_object_id"))
        return name, str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
    text = str(first)
    return text.lstrip("-"), text.startswith("-")


def _query_matches(
    props: Mapping[str, str | None], tokens: list[str], searchable: tuple[str, ...]
) -> bool:
    """Every query token starts a word of some searchable property (case-insensitive)."""
    whole = [(props.get(name) or "").lower() for name in searchable]
    words = [w for value in whole for w in re.split(r"\W+", value) if w]
    return all(
        any(w.startswith(tok) for w in words) or any(v.startswith(tok) for v in whole)
        for tok in tokens
    )


def search(
    rows: list[tuple[str, dict[str, str | None]]],
    body: Mapping[str, Any],
    props: Mapping[str, PropertyDef],
    searchable: tuple[str, ...] = (),
) -> tuple[list[str], int, int | None]:
    """Ids of one page of matches, the total, and the next ``after`` offset (or None).

    ``query`` is HubSpot's free text: each word must begin a word of one of the object
    type's default searchable properties. At most `RESULT_CAP` results are served:
    an ``after`` at or past the cap is refused, and the last page stops at the cap."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise SearchError("filterGroups must be a list")
    _validate(groups, props)
    try:
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
    except (TypeError, ValueError) as exc:
        raise SearchError("limit and after must be integers") from exc
    if not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if after < 0:
        raise SearchError(f"after must not be negative, got {after}")
    if after >= RESULT_CAP:
        raise SearchError(
            f"paging is limited to {RESULT_CAP} results; after={after} is past the limit"
        )
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise SearchError("query must be a string")
    tokens = [t for t in re.split(r"\s+", (query or "").lower()) if t]
    hits = [
        (rid, p)
        for rid, p in rows
        if (not tokens or _query_matches(p, tokens, searchable))
        and (
            not groups
            or any(
                all(_matches(p, f, props.get(str(f.get("propertyName")))) for f in g["filters"])
                for g in groups
            )
        )
    ]
    name, descending = _sort_spec(list(body.get("sorts") or []))
    pdef = props.get(name)

    def order(item: tuple[str, dict[str, str | None]]) -> tuple[int, Any, int]:
        value = item[1].get(name)
        key = _key(pdef, value) if value not in (None, "") else 0
        return (value in (None, ""), key, int(item[0]))

    hits.sort(key=order, reverse=descending)
    end = min(after + limit, len(hits), RESULT_CAP)
    page = hits[after:end]
    nxt = end if end < min(len(hits), RESULT_CAP) else None
    return [rid for rid, _ in page], len(hits), nxt
