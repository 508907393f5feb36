"""The SOQL syntax tree of the sandbox's SOQL engine (see `sandbox.salesforce_soql`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce_soql_lexer import SoqlError

AGGREGATES = {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"}
NUMERIC = {"double", "currency", "percent", "int"}
FIELDS_LIMIT = 200


@dataclass(frozen=True)
class Entity:
    """What the parser knows of an object: field types and relationships (lower-case keys).

    `parents`: relationship name → (its spelling, reference field, target objects).
    `children`: relationship name → (its spelling, child object, the child's reference field).
    """

    name: str
    types: Mapping[str, str]
    parents: Mapping[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    children: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)


Schema = Mapping[str, Entity | Mapping[str, str]]  # an Entity, or just field → type


@dataclass(frozen=True)
class Path:
    """A field, reached through zero or more parent relationships (relationship, field)."""

    hops: tuple[tuple[str, str], ...]
    field: str
    type: str

    @property
    def name(self) -> str:
        return ".".join([*(rel for rel, _ in self.hops), self.field])


@dataclass(frozen=True)
class Func:
    """An aggregate or date function over a path (``COUNT()`` has none), maybe aliased."""

    name: str
    arg: Path | None
    alias: str | None = None

    @property
    def aggregate(self) -> bool:
        return self.name in AGGREGATES

    @property
    def type(self) -> str:
        if self.name in ("COUNT", "COUNT_DISTINCT"):
            return "int"
        if self.name in ("SUM", "AVG"):
            return "double"
        if self.name == "DAY_ONLY":
            return "date"
        assert self.arg is not None
        return self.arg.type if self.aggregate else "int"

    def same(self, other: object) -> bool:
        return isinstance(other, Func) and (self.name, self.arg) == (other.name, other.arg)


@dataclass(frozen=True)
class DateLiteral:
    """A relative date range such as ``TODAY`` or ``LAST_N_DAYS:7``."""

    name: str
    n: int = 0


Expr = Path | Func


@dataclass(frozen=True)
class Compare:
    """``expr <op> value``; op is a comparison, ``LIKE``, ``IN`` or ``NOT IN``."""

    left: Expr
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    """``AND``/``OR`` over two or more conditions, or ``NOT`` over one."""

    op: str
    items: tuple[Condition, ...]


Condition = Compare | BoolOp


@dataclass(frozen=True)
class OrderItem:
    """One ``ORDER BY`` term."""

    expr: Expr
    descending: bool = False
    nulls_first: bool = True


@dataclass
class Subquery:
    """A child relationship query inside SELECT; `fk` is the child's reference field."""

    relationship: str
    fk: str
    query: Query


@dataclass
class Query:
    """A parsed query, with names resolved to the schema's spelling."""

    object: str
    select: list[Path | Func | Subquery] = field(default_factory=list)
    count_only: bool = False
    where: Condition | None = None
    group_by: list[Expr] = field(default_factory=list)
    having: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0

    @property
    def fields(self) -> list[str]:
        """The selected paths' dotted names."""
        return [item.name for item in self.select if isinstance(item, Path)]

    @property
    def aggregated(self) -> bool:
        """Whether rows are AggregateResults (GROUP BY or an aggregate function)."""
        return bool(self.group_by) or any(isinstance(i, Func) and i.aggregate for i in self.select)


def check_grouping(query: Query) -> None:
    """Salesforce's rules for aggregate queries: every plain field grouped or aggregated."""
    date_funcs = [i for i in query.select if isinstance(i, Func) and not i.aggregate]
    if not query.aggregated:
        if date_funcs:
            raise SoqlError(f"{date_funcs[0].name} is only valid in an aggregate query")
        return
    if query.count_only:
        return
    grouped = {g.name for g in query.group_by if isinstance(g, Path)}
    for item in query.select:
        if isinstance(item, Subquery):
            raise SoqlError("Nested queries are not supported in aggregate queries")
        if isinstance(item, Path) and item.name not in grouped:
            raise SoqlError(f"Field must be grouped or aggregated: {item.name}")
        if (
            isinstance(item, Func)
            and not item.aggregate
            and not any(item.same(g) for g in query.group_by)
        ):
            raise SoqlError(f"Field must be grouped or aggregated: {item.name}")
    for order in query.order_by:
        expr = order.expr
        if isinstance(expr, Path) and expr.name not in grouped:
            raise SoqlError(f"Ordered field must be grouped or aggregated: {expr.name}")
