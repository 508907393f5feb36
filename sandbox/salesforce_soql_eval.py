"""Evaluating parsed SOQL over records: filters, relationship paths, sorting, aggregates.

Records are plain mappings. Parent paths and child subqueries go through a `Lookup` that
the REST layer builds over the store; `NO_LOOKUP` serves queries without relationships.
Comparisons follow SOQL: text compares case-insensitively, ids in their 15-character
form, null only equals null, and a date literal is a range of days.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sandbox.salesforce_soql_ast import (
    NUMERIC,
    BoolOp,
    Condition,
    DateLiteral,
    Expr,
    Func,
    Path,
    Query,
    Subquery,
)
from sandbox.salesforce_soql_dates import apply_date_function, date_range
from sandbox.salesforce_soql_lexer import parse_datetime

Record = Mapping[str, Any]
Getter = Callable[[Expr], Any]


class Lookup(Protocol):
    """How relationship paths reach other records."""

    def record(self, record_id: str) -> tuple[str, Record] | None:
        """The (object, record) with this id, if it is visible to the query."""

    def children(self, obj: str, field: str, parent_id: str) -> list[Record]:
        """The visible `obj` records whose `field` references `parent_id`."""


class _NoLookup:
    def record(self, record_id: str) -> tuple[str, Record] | None:
        return None

    def children(self, obj: str, field: str, parent_id: str) -> list[Record]:
        return []


NO_LOOKUP: Lookup = _NoLookup()
UrlFor = Callable[[str, str], str]


# -- values ------------------------------------------------------------------------------
def _walk(path: Path, record: Record, lookup: Lookup) -> Record | None:
    current: Record | None = record
    for _, fk in path.hops:
        rid = current.get(fk) if current is not None else None
        found = lookup.record(str(rid)) if rid else None
        current = found[1] if found else None
    return current


def value_of(expr: Expr, record: Record, lookup: Lookup) -> Any:
    """A path's or date function's value on `record` (aggregates need a group)."""
    path = expr if isinstance(expr, Path) else expr.arg
    assert path is not None
    target = _walk(path, record, lookup)
    raw = None if target is None else target.get(path.field)
    if isinstance(expr, Func):
        return apply_date_function(expr.name, _comparable(raw, path.type))
    return raw


def _comparable(value: Any, ftype: str) -> Any:
    if value is None or isinstance(value, DateLiteral):
        return value
    if ftype == "datetime":
        return value if isinstance(value, datetime) else parse_datetime(str(value))
    if ftype == "date":
        if isinstance(value, datetime):
            return value.date()
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if ftype in NUMERIC:
        return float(value)
    if ftype in ("id", "reference"):
        return str(value)[:15]  # the 18-char suffix only encodes the case of the first 15
    if ftype == "boolean":
        return value
    return str(value).lower()


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _in_range(actual: Any, op: str, literal: DateLiteral, ftype: str) -> bool:
    start, end = date_range(literal.name, literal.n)
    if ftype == "datetime":
        low: Any = datetime(start.year, start.month, start.day, tzinfo=UTC)
        high: Any = datetime(end.year, end.month, end.day, tzinfo=UTC)
    else:
        low, high = start, end
    inside = bool(low <= actual < high)
    results: dict[str, bool] = {
        "=": inside,
        "!=": not inside,
        "IN": inside,
        "<": actual < low,
        "<=": actual < high,
        ">": actual >= high,
        ">=": actual >= low,
    }
    return results[op]


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def matches(cond: Condition, get: Getter) -> bool:
    """Whether the record (or group) that `get` reads satisfies `cond`."""
    if isinstance(cond, BoolOp):
        if cond.op == "NOT":
            return not matches(cond.items[0], get)
        results = (matches(c, get) for c in cond.items)
        return all(results) if cond.op == "AND" else any(results)
    ftype = cond.left.type
    actual = _comparable(get(cond.left), ftype)
    if cond.op == "LIKE":
        return actual is not None and _like(cond.value).fullmatch(str(actual)) is not None
    if cond.op in ("IN", "NOT IN"):
        found = any(_equals(actual, v, ftype) for v in cond.value)
        return found if cond.op == "IN" else not found
    if isinstance(cond.value, DateLiteral):
        return actual is not None and _in_range(actual, cond.op, cond.value, ftype)
    if cond.op in ("=", "!="):
        return _equals(actual, cond.value, ftype) == (cond.op == "=")
    expected = _comparable(cond.value, ftype)
    if actual is None or expected is None:
        return False
    return _ORDER[cond.op](actual, expected)


def _equals(actual: Any, value: Any, ftype: str) -> bool:
    if isinstance(value, DateLiteral):
        return actual is not None and _in_range(actual, "=", value, ftype)
    return bool(actual == _comparable(value, ftype))


def _sort(rows: list[Any], query: Query, get: Callable[[Any, Expr], Any]) -> list[Any]:
    for item in reversed(query.order_by):
        ftype = item.expr.type
        keyed = [(_comparable(get(r, item.expr), ftype), r) for r in rows]
        present = [(k, r) for k, r in keyed if k is not None]
        nulls = [r for k, r in keyed if k is None]
        present.sort(key=lambda pair: pair[0], reverse=item.descending)
        ordered = [r for _, r in present]
        rows = nulls + ordered if item.nulls_first else ordered + nulls
    return rows


def _slice(rows: list[Any], query: Query) -> list[Any]:
    end = None if query.limit is None else query.offset + query.limit
    return rows[query.offset : end]


def execute(query: Query, records: Sequence[Record], lookup: Lookup = NO_LOOKUP) -> list[Record]:
    """Filter, sort and slice `records` (all of `query.object`) as the query asks."""
    where = query.where
    rows = [r for r in records if where is None or matches(where, _getter(r, lookup))]
    rows = _sort(rows, query, lambda r, e: value_of(e, r, lookup))
    return _slice(rows, query)


def _getter(record: Record, lookup: Lookup) -> Getter:
    return lambda expr: value_of(expr, record, lookup)


def _group_getter(group: list[Record], get: Callable[[list[Record], Expr], Any]) -> Getter:
    return lambda expr: get(group, expr)


# -- results -----------------------------------------------------------------------------
def run(
    query: Query, records: Sequence[Record], lookup: Lookup, url: UrlFor
) -> list[dict[str, Any]]:
    """The query's result records as the REST API renders them."""
    if query.aggregated:
        return _aggregate(query, records, lookup)
    return [_render(query, row, lookup, url) for row in execute(query, records, lookup)]


def _render(query: Query, record: Record, lookup: Lookup, url: UrlFor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {"type": query.object, "url": url(query.object, record["Id"])}
    }
    for item in query.select:
        if isinstance(item, Subquery):
            children = lookup.children(item.query.object, item.fk, str(record["Id"]))
            rows = run(item.query, children, lookup, url)
            out[item.relationship] = (
                {"totalSize": len(rows), "done": True, "records": rows} if rows else None
            )
        elif isinstance(item, Path):
            _put_path(out, item, record, lookup, url)
    return out


def _put_path(out: dict[str, Any], path: Path, record: Record, lookup: Lookup, url: UrlFor) -> None:
    node, current = out, record
    for rel, fk in path.hops:
        if rel in node and node[rel] is None:
            return
        rid = current.get(fk)
        found = lookup.record(str(rid)) if rid else None
        if found is None:
            node[rel] = None
            return
        obj, current = found
        if rel not in node:
            node[rel] = {"attributes": {"type": obj, "url": url(obj, str(current["Id"]))}}
        node = node[rel]
    node[path.field] = current.get(path.field)


def _aggregate(query: Query, records: Sequence[Record], lookup: Lookup) -> list[dict[str, Any]]:
    where = query.where
    rows = [r for r in records if where is None or matches(where, _getter(r, lookup))]
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for row in rows:
        key = tuple(_comparable(value_of(g, row, lookup), g.type) for g in query.group_by)
        groups.setdefault(key, []).append(row)
    if not query.group_by and not groups:
        groups[()] = []

    def get(group: list[Record], expr: Expr) -> Any:
        if isinstance(expr, Func) and expr.aggregate:
            return _aggregate_value(expr, group, lookup)
        return value_of(expr, group[0], lookup) if group else None

    having = query.having
    kept = [g for g in groups.values() if having is None or matches(having, _group_getter(g, get))]
    kept = _slice(_sort(kept, query, get), query)
    out = []
    for group in kept:
        result: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
        unnamed = 0
        for item in query.select:
            assert not isinstance(item, Subquery)
            if isinstance(item, Path):
                result[item.field] = get(group, item)
                continue
            label = item.alias or f"expr{unnamed}"
            unnamed += item.alias is None
            result[label] = get(group, item)
        out.append(result)
    return out


def _aggregate_value(func: Func, rows: Sequence[Record], lookup: Lookup) -> Any:
    if func.arg is None:
        return len(rows)
    raw = [value_of(func.arg, r, lookup) for r in rows]
    present = [v for v in raw if v is not None]
    if func.name == "COUNT":
        return len(present)
    if func.name == "COUNT_DISTINCT":
        return len({_comparable(v, func.arg.type) for v in present})
    if not present:
        return None
    if func.name in ("SUM", "AVG"):
        total = sum(float(v) for v in present)
        return total if func.name == "SUM" else total / len(present)
    chosen = (min if func.name == "MIN" else max)(
        present, key=lambda v: _comparable(v, func.arg.type if func.arg else "string")
    )
    return chosen
