"""SOQL for the Salesforce sandbox: the syntax tree and a recursive-descent parser.

Covered: ``SELECT`` fields, parent relationship paths (``Account.Owner.Email``), child
subqueries (``(SELECT Id FROM OpportunityLineItems)``), ``FIELDS(STANDARD|ALL|CUSTOM)``,
``COUNT()``, aggregates (``COUNT``, ``COUNT_DISTINCT``, ``SUM``, ``AVG``, ``MIN``, ``MAX``)
with aliases, date functions (``CALENDAR_YEAR(CloseDate)``...), ``WHERE`` with
``AND``/``OR``/``NOT``, comparisons, ``LIKE``, ``IN``/``NOT IN``, date literals, ``GROUP BY``,
``HAVING``, ``ORDER BY ... ASC|DESC NULLS FIRST|LAST``, ``LIMIT`` and ``OFFSET``. Like real
SOQL, mixing ``AND`` and ``OR`` at one level without parentheses is malformed. Tokens live in
`sandbox.salesforce_soql_lexer`, evaluation in `sandbox.salesforce_soql_eval`.
"""

from __future__ import annotations

from typing import Any

from sandbox.salesforce_soql_ast import (
    AGGREGATES,
    FIELDS_LIMIT,
    NUMERIC,
    BoolOp,
    Compare,
    Condition,
    DateLiteral,
    Entity,
    Expr,
    Func,
    OrderItem,
    Path,
    Query,
    Schema,
    Subquery,
    check_grouping,
)
from sandbox.salesforce_soql_dates import DATE_FUNCTIONS
from sandbox.salesforce_soql_eval import execute, run
from sandbox.salesforce_soql_lexer import (
    SoqlError,
    Token,
    TokenCursor,
    parse_datetime,
    tokenize,
)

__all__ = [
    "BoolOp",
    "Compare",
    "Entity",
    "Query",
    "SoqlError",
    "execute",
    "parse",
    "parse_datetime",
    "run",
    "tokenize",
]


def _entity(schema: Schema, name: str) -> Entity:
    value = schema[name]
    return value if isinstance(value, Entity) else Entity(name, value)


def _invalid_field(name: str, obj: str) -> SoqlError:
    return SoqlError(
        f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name.",
        "INVALID_FIELD",
    )


class Parser(TokenCursor):
    """Recursive-descent parser; `schema` resolves object, field and relationship names."""

    def __init__(self, text: str, schema: Schema) -> None:
        super().__init__(tokenize(text))
        self.schema = schema

    def parse(self) -> Query:
        query, _ = self._query(None)
        if self.i < len(self.tokens):
            raise self._unexpected()
        return query

    # -- queries -------------------------------------------------------------------------
    def _query(self, parent: Entity | None) -> tuple[Query, tuple[str, str]]:
        """A query; for a child subquery also (relationship name, the child's reference)."""
        self._keyword("SELECT")
        start = self.i
        self.i = self._from_index()
        child_of: tuple[str, str] = ("", "")
        tok = self._object_name()
        if parent is None:
            entity = self._object(tok)
        else:
            child = parent.children.get(str(tok.value).lower())
            if child is None:
                raise SoqlError(
                    f"Didn't understand relationship '{tok.value}' in FROM part of query call."
                    " If you are attempting to use a custom relationship, be sure to append"
                    " the '__r' after the custom relationship name.",
                    "INVALID_TYPE",
                )
            entity, child_of = _entity(self.schema, child[1]), (child[0], child[2])
        end, self.i = self.i, start
        query = Query(object=entity.name)
        fields_fn = self._select_list(query, entity, nested=parent is not None)
        self.i = end
        if self._accept_keyword("WHERE"):
            query.where = self._or(entity, aggregate=False)
        if self._accept_keyword("GROUP"):
            self._keyword("BY")
            query.group_by = [self._expr(entity)]
            while self._accept_punct(","):
                query.group_by.append(self._expr(entity))
        if self._accept_keyword("HAVING"):
            query.having = self._or(entity, aggregate=True)
        if self._accept_keyword("ORDER"):
            self._keyword("BY")
            query.order_by = self._order_by(entity)
        if self._accept_keyword("LIMIT"):
            query.limit = self._integer("LIMIT")
        if self._accept_keyword("OFFSET"):
            query.offset = self._integer("OFFSET")
        if fields_fn in ("ALL", "CUSTOM") and (query.limit is None or query.limit > FIELDS_LIMIT):
            raise SoqlError(f"The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}")
        check_grouping(query)
        if parent is not None:
            self._punct(")")
        return query, child_of

    def _object_name(self) -> Token:
        """The name after FROM; ``Order`` is an object there, not the ORDER keyword."""
        if self._peek_keyword("ORDER") and not self._peek_keyword_at("BY", 1):
            tok = self._next()
            return Token("ident", "Order", tok.pos)
        return self._ident()

    def _from_index(self) -> int:
        depth = 0
        for index in range(self.i, len(self.tokens)):
            tok = self.tokens[index]
            if tok.kind == "punct":
                depth += {"(": 1, ")": -1}.get(tok.value, 0)
            if depth == 0 and tok.kind == "keyword" and tok.value == "FROM":
                return index + 1
        raise SoqlError("unexpected end of query, expecting FROM")

    def _select_list(self, query: Query, entity: Entity, *, nested: bool) -> str:
        fields_fn = ""
        if self._peek_keyword("COUNT") and self._peek_punct(")", 2):
            self.i += 3
            query.count_only = True
            self._keyword("FROM")
            return fields_fn
        while True:
            if not nested and self._accept_punct("("):
                query.select.append(self._subquery(entity))
            elif self._peek_ident("FIELDS") and self._peek_punct("(", 1):
                fields_fn = self._fields_function(query, entity)
            else:
                query.select.append(self._expr(entity, alias=True))
            if not self._accept_punct(","):
                break
        self._keyword("FROM")
        return fields_fn

    def _subquery(self, entity: Entity) -> Subquery:
        inner, (relationship, fk) = self._query(entity)
        return Subquery(relationship, fk, inner)

    def _fields_function(self, query: Query, entity: Entity) -> str:
        self.i += 2
        kind = str(self._ident().value).upper()
        self._punct(")")
        if kind not in ("STANDARD", "ALL", "CUSTOM"):
            raise SoqlError(f"FIELDS({kind}) is not supported: use STANDARD, ALL or CUSTOM")
        for name, ftype in entity.types.items():
            custom = name.endswith("__c")
            if kind == "ALL" or (kind == "CUSTOM") == custom:
                query.select.append(Path((), name, ftype))
        return kind

    def _expr(self, entity: Entity, *, alias: bool = False) -> Expr:
        tok = self._next()
        if (tok.kind == "keyword" and tok.value == "COUNT") or (
            tok.kind == "ident" and self._peek_punct("(")
        ):
            name = str(tok.value).upper()
            if name not in AGGREGATES and name not in DATE_FUNCTIONS:
                raise SoqlError(f"Unknown function {tok.value} at column {tok.pos + 1}")
            self._punct("(")
            arg = self._path(entity, self._ident()) if not self._peek_punct(")") else None
            self._punct(")")
            if arg is None and name != "COUNT":
                raise self._unexpected(self.tokens[self.i - 1])
            if name in ("SUM", "AVG") and arg is not None and arg.type not in NUMERIC:
                raise SoqlError(
                    f"field {arg.name} does not support aggregate operator {name}",
                    "INVALID_FIELD",
                )
            if name in DATE_FUNCTIONS and arg is not None and arg.type not in ("date", "datetime"):
                raise SoqlError(f"{name} needs a date or datetime field, not {arg.name}")
            label = str(self._next().value) if alias and self._peek_kind("ident") else None
            return Func(name, arg, label)
        if tok.kind != "ident":
            raise self._unexpected(tok)
        return self._path(entity, tok)

    def _path(self, entity: Entity, tok: Token) -> Path:
        *rels, last = str(tok.value).split(".")
        if rels and rels[0].lower() == entity.name.lower():
            rels = rels[1:]  # a path may start with the queried object's own name
        hops: list[tuple[str, str]] = []
        targets: tuple[str, ...] = (entity.name,)
        current = entity
        for rel in rels:
            found = current.parents.get(rel.lower())
            if found is None:
                raise SoqlError(
                    f"Didn't understand relationship '{rel}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name.",
                    "INVALID_FIELD",
                )
            spelled, fk, targets = found
            hops.append((spelled, fk))
            current = _entity(self.schema, targets[0])
        for target in targets:
            types = _entity(self.schema, target).types
            for name, ftype in types.items():
                if name.lower() == last.lower():
                    return Path(tuple(hops), name, ftype)
        raise _invalid_field(last, current.name)

    def _object(self, tok: Token) -> Entity:
        for name in self.schema:
            if name.lower() == str(tok.value).lower():
                return _entity(self.schema, name)
        raise SoqlError(f"sObject type '{tok.value}' is not supported.", "INVALID_TYPE")

    # -- conditions ----------------------------------------------------------------------
    def _or(self, entity: Entity, *, aggregate: bool) -> Condition:
        items = [self._and(entity, aggregate)]
        while self._accept_keyword("OR"):
            tok = self.tokens[self.i - 1]
            condition, had_and = self._and_chain(entity, aggregate)
            if had_and:
                raise SoqlError(f"unexpected token: 'AND' after 'OR' at column {tok.pos + 1}")
            items.append(condition)
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def _and(self, entity: Entity, aggregate: bool) -> Condition:
        condition, had_and = self._and_chain(entity, aggregate)
        if had_and and self._peek_keyword("OR"):
            pos = self.tokens[self.i].pos + 1
            raise SoqlError(f"unexpected token: 'OR' at column {pos} (mixing AND and OR)")
        return condition

    def _and_chain(self, entity: Entity, aggregate: bool) -> tuple[Condition, bool]:
        items = [self._not(entity, aggregate)]
        while self._accept_keyword("AND"):
            items.append(self._not(entity, aggregate))
        return (items[0], False) if len(items) == 1 else (BoolOp("AND", tuple(items)), True)

    def _not(self, entity: Entity, aggregate: bool) -> Condition:
        if self._accept_keyword("NOT"):
            return BoolOp("NOT", (self._not(entity, aggregate),))
        if self._accept_punct("("):
            inner = self._or(entity, aggregate=aggregate)
            self._punct(")")
            return inner
        return self._comparison(entity, aggregate)

    def _comparison(self, entity: Entity, aggregate: bool) -> Compare:
        left = self._expr(entity)
        if isinstance(left, Func) and left.aggregate and not aggregate:
            raise SoqlError(f"Aggregate functions are not allowed in WHERE: {left.name}")
        tok = self._next()
        if tok.kind == "op":
            op = "!=" if tok.value == "<>" else str(tok.value)
            return Compare(left, op, self._literal(left, self._next()))
        if tok.kind == "keyword" and tok.value == "LIKE":
            value = self._next()
            if value.kind != "string" or left.type in NUMERIC | {"date", "datetime", "boolean"}:
                raise _type_error(left, "LIKE needs a text field and a string pattern")
            return Compare(left, "LIKE", value.value)
        if tok.kind == "keyword" and tok.value == "NOT":
            self._keyword("IN")
            return Compare(left, "NOT IN", self._list(left))
        if tok.kind == "keyword" and tok.value == "IN":
            return Compare(left, "IN", self._list(left))
        raise self._unexpected(tok)

    def _list(self, left: Expr) -> tuple[Any, ...]:
        self._punct("(")
        if self._peek_keyword("SELECT"):
            raise SoqlError("semi-join subqueries are not supported by the sandbox")
        values = [self._literal(left, self._next())]
        while self._accept_punct(","):
            values.append(self._literal(left, self._next()))
        self._punct(")")
        return tuple(values)

    def _literal(self, left: Expr, tok: Token) -> Any:
        ftype = left.type
        if tok.kind == "keyword" and tok.value == "NULL":
            return None
        if tok.kind == "keyword" and tok.value in ("TRUE", "FALSE"):
            if ftype != "boolean":
                raise _type_error(left)
            return tok.value == "TRUE"
        if tok.kind == "dateliteral":
            if ftype not in ("date", "datetime"):
                raise _type_error(left)
            return DateLiteral(*tok.value)
        expected = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(ftype)
        expected = expected or ("number" if ftype in NUMERIC else "string")
        if tok.kind not in ("string", "number", "date", "datetime"):
            raise self._unexpected(tok)
        if tok.kind != expected:
            raise _type_error(left)
        return tok.value

    def _order_by(self, entity: Entity) -> list[OrderItem]:
        items = []
        while True:
            expr = self._expr(entity)
            desc = self._accept_keyword("DESC")
            if not desc:
                self._accept_keyword("ASC")
            nulls_first = not desc
            if self._accept_keyword("NULLS"):
                word = self._next()
                if word.value not in ("FIRST", "LAST"):
                    raise self._unexpected(word, "expecting FIRST or LAST")
                nulls_first = word.value == "FIRST"
            items.append(OrderItem(expr, desc, nulls_first))
            if not self._accept_punct(","):
                return items

    def _integer(self, clause: str) -> int:
        tok = self._next()
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
            raise SoqlError(f"{clause} needs a non-negative integer")
        return tok.value


def _type_error(left: Expr, hint: str = "") -> SoqlError:
    name = left.name if isinstance(left, Path) else f"{left.name}()"
    return SoqlError(
        hint or f"value of filter criterion for field '{name}' must be of type {left.type}",
        "INVALID_FIELD",
    )


def parse(text: str, schema: Schema) -> Query:
    """Parse `text` against `schema`; raises `SoqlError` like Salesforce would."""
    return Parser(text, schema).parse()
