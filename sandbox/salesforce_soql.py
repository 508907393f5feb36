"""A small SOQL engine for the Salesforce sandbox: tokenizer, parser and evaluator.

It covers what Handoff and simple-salesforce send: ``SELECT`` fields (or ``COUNT()``)
``FROM`` one object, ``WHERE`` with ``AND``/``OR``/``NOT`` and parentheses, the comparison
operators, ``LIKE``, ``IN``/``NOT IN``, ``ORDER BY ... ASC|DESC NULLS FIRST|LAST``,
``LIMIT`` and ``OFFSET``. Like real SOQL, mixing ``AND`` and ``OR`` at one level without
parentheses is malformed, and ``=`` on text compares case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IN", "ORDER", "BY", "ASC",
    "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT",
}  # fmt: skip
OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<string>')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
ESCAPES |= {"_": "\\_", "%": "\\%"}  # kept escaped: they only mean something in LIKE


class SoqlError(Exception):
    """A query Salesforce would refuse; `error_code` is its REST errorCode."""

    def __init__(self, message: str, error_code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


@dataclass(frozen=True)
class Token:
    """One lexical token: kind (keyword, ident, string, number, date, datetime, op, punct)."""

    kind: str
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; string literals are unescaped here."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if m is None:
            raise SoqlError(f"unexpected character {text[pos]!r} at column {pos + 1}")
        kind = m.lastgroup or ""
        if kind == "string":
            value, pos = _read_string(text, pos + 1)
            tokens.append(Token("string", value, m.start()))
            continue
        pos = m.end()
        raw = m.group()
        if kind == "ws":
            continue
        if kind == "ident" and raw.upper() in KEYWORDS:
            tokens.append(Token("keyword", raw.upper(), m.start()))
        elif kind == "number":
            tokens.append(Token("number", float(raw) if "." in raw else int(raw), m.start()))
        elif kind == "datetime":
            tokens.append(Token("datetime", parse_datetime(raw), m.start()))
        elif kind == "date":
            tokens.append(Token("date", date.fromisoformat(raw), m.start()))
        else:
            tokens.append(Token(kind, raw, m.start()))
    return tokens


def _read_string(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == "'":
            return "".join(out), pos + 1
        if ch == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt not in ESCAPES:
                raise SoqlError(f"invalid escape sequence \\{nxt} at column {pos + 1}")
            out.append(ESCAPES[nxt])
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise SoqlError("unterminated string literal")


def parse_datetime(raw: str) -> datetime:
    """A SOQL/REST datetime (``Z``, ``+0000`` or ``+00:00``) as an aware UTC datetime."""
    text = raw.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


# -- the syntax tree ---------------------------------------------------------------------
@dataclass(frozen=True)
class Compare:
    """``field <op> value``; op is one of OPERATORS, ``LIKE``, ``IN`` or ``NOT IN``."""

    field: str
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

    field: str
    descending: bool = False
    nulls_first: bool = True


@dataclass
class Query:
    """A parsed query, with field names resolved to the schema's spelling."""

    object: str
    fields: list[str] = field(default_factory=list)
    count_only: bool = False
    where: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


Schema = Mapping[str, Mapping[str, str]]  # object → field → type


class Parser:
    """Recursive-descent parser; `schema` resolves object and field names."""

    def __init__(self, text: str, schema: Schema) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.schema = schema
        self.fields: dict[str, str] = {}
        self.types: Mapping[str, str] = {}

    def parse(self) -> Query:
        self._keyword("SELECT")
        names, count_only = self._select_list()
        self._keyword("FROM")
        query = Query(object=self._object(), count_only=count_only)
        query.fields = [self._field(n) for n in names]
        if self._accept_keyword("WHERE"):
            query.where = self._or()
        if self._accept_keyword("ORDER"):
            self._keyword("BY")
            query.order_by = self._order_by()
        if self._accept_keyword("LIMIT"):
            query.limit = self._integer("LIMIT")
        if self._accept_keyword("OFFSET"):
            query.offset = self._integer("OFFSET")
        if self.i < len(self.tokens):
            raise self._unexpected()
        return query

    # -- clauses -------------------------------------------------------------------------
    def _select_list(self) -> tuple[list[Token], bool]:
        if self._accept_keyword("COUNT"):
            self._punct("(")
            self._punct(")")
            return [], True
        names = [self._ident()]
        while self._accept_punct(","):
            names.append(self._ident())
        return names, False

    def _object(self) -> str:
        tok = self._ident()
        for name, fields in self.schema.items():
            if name.lower() == str(tok.value).lower():
                self.fields = {f.lower(): f for f in fields}
                self.types = fields
                return name
        raise SoqlError(f"sObject type '{tok.value}' is not supported.", "INVALID_TYPE")

    def _field(self, tok: Token) -> str:
        name = self.fields.get(str(tok.value).lower())
        if name is None:
            raise SoqlError(
                f"No such column '{tok.value}' on entity. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name.",
                "INVALID_FIELD",
            )
        return name

    def _or(self) -> Condition:
        items = [self._and()]
        while self._accept_keyword("OR"):
            tok = self.tokens[self.i - 1]
            condition, had_and = self._and_chain()
            if had_and:
                raise SoqlError(f"unexpected token: 'AND' after 'OR' at column {tok.pos + 1}")
            items.append(condition)
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def _and(self) -> Condition:
        condition, had_and = self._and_chain()
        if had_and and self._peek_keyword("OR"):
            pos = self.tokens[self.i].pos + 1
            raise SoqlError(f"unexpected token: 'OR' at column {pos} (mixing AND and OR)")
        return condition

    def _and_chain(self) -> tuple[Condition, bool]:
        items = [self._not()]
        while self._accept_keyword("AND"):
            items.append(self._not())
        return (items[0], False) if len(items) == 1 else (BoolOp("AND", tuple(items)), True)

    def _not(self) -> Condition:
        if self._accept_keyword("NOT"):
            return BoolOp("NOT", (self._not(),))
        if self._accept_punct("("):
            inner = self._or()
            self._punct(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Compare:
        name = self._field(self._ident())
        tok = self._next()
        if tok.kind == "op":
            op = "!=" if tok.value == "<>" else str(tok.value)
            return Compare(name, op, self._literal(name, self._next()))
        if tok.kind == "keyword" and tok.value == "LIKE":
            value = self._next()
            if value.kind != "string":
                raise SoqlError("LIKE needs a string pattern")
            return Compare(name, "LIKE", value.value)
        if tok.kind == "keyword" and tok.value == "NOT":
            self._keyword("IN")
            return Compare(name, "NOT IN", self._list(name))
        if tok.kind == "keyword" and tok.value == "IN":
            return Compare(name, "IN", self._list(name))
        raise self._unexpected(tok)

    def _list(self, name: str) -> tuple[Any, ...]:
        self._punct("(")
        values = [self._literal(name, self._next())]
        while self._accept_punct(","):
            values.append(self._literal(name, self._next()))
        self._punct(")")
        return tuple(values)

    def _literal(self, name: str, tok: Token) -> Any:
        ftype = self.types[name]
        if tok.kind == "keyword" and tok.value == "NULL":
            return None
        if tok.kind == "keyword" and tok.value in ("TRUE", "FALSE"):
            if ftype != "boolean":
                raise _type_error(name, ftype)
            return tok.value == "TRUE"
        expected = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(ftype)
        expected = expected or ("number" if ftype in NUMERIC else "string")
        if tok.kind not in ("string", "number", "date", "datetime"):
            raise self._unexpected(tok)
        if tok.kind != expected:
            raise _type_error(name, ftype)
        return tok.value

    def _order_by(self) -> list[OrderItem]:
        items = []
        while True:
            name = self._field(self._ident())
            desc = self._accept_keyword("DESC")
            if not desc:
                self._accept_keyword("ASC")
            nulls_first = not desc
            if self._accept_keyword("NULLS"):
                nulls_first = self._next().value == "FIRST"
            items.append(OrderItem(name, desc, nulls_first))
            if not self._accept_punct(","):
                return items

    def _integer(self, clause: str) -> int:
        tok = self._next()
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
            raise SoqlError(f"{clause} needs a non-negative integer")
        return tok.value

    # -- token helpers -------------------------------------------------------------------
    def _next(self) -> Token:
        if self.i >= len(self.tokens):
            raise SoqlError("unexpected end of query")
        self.i += 1
        return self.tokens[self.i - 1]

    def _ident(self) -> Token:
        tok = self._next()
        if tok.kind != "ident":
            raise self._unexpected(tok)
        return tok

    def _keyword(self, word: str) -> None:
        tok = self._next()
        if tok.kind != "keyword" or tok.value != word:
            raise self._unexpected(tok, f"expecting {word}")

    def _peek_keyword(self, word: str) -> bool:
        return (
            self.i < len(self.tokens)
            and self.tokens[self.i].kind == "keyword"
            and self.tokens[self.i].value == word
        )

    def _accept_keyword(self, word: str) -> bool:
        if self._peek_keyword(word):
            self.i += 1
            return True
        return False

    def _accept_punct(self, ch: str) -> bool:
        tok = self.tokens[self.i] if self.i < len(self.tokens) else None
        if tok is not None and tok.kind == "punct" and tok.value == ch:
            self.i += 1
            return True
        return False

    def _punct(self, ch: str) -> None:
        tok = self._next()
        if tok.kind != "punct" or tok.value != ch:
            raise self._unexpected(tok, f"expecting '{ch}'")

    def _unexpected(self, tok: Token | None = None, hint: str = "") -> SoqlError:
        tok = tok or self.tokens[self.i]
        extra = f", {hint}" if hint else ""
        return SoqlError(f"unexpected token: '{tok.value}' at column {tok.pos + 1}{extra}")


NUMERIC = {"double", "currency", "percent", "int"}


def _type_error(name: str, ftype: str) -> SoqlError:
    return SoqlError(
        f"value of filter criterion for field '{name}' must be of type {ftype}", "INVALID_FIELD"
    )


def parse(text: str, schema: Schema) -> Query:
    """Parse `text` against `schema`; raises `SoqlError` like Salesforce would."""
    return Parser(text, schema).parse()


# -- evaluation --------------------------------------------------------------------------
def _comparable(value: Any, ftype: str) -> Any:
    if value is None:
        return None
    if ftype == "datetime":
        return value if isinstance(value, datetime) else parse_datetime(str(value))
    if ftype == "date":
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


def matches(cond: Condition, record: Mapping[str, Any], types: Mapping[str, str]) -> bool:
    """Whether `record` satisfies `cond` (SQL-like: comparisons with null are false)."""
    if isinstance(cond, BoolOp):
        if cond.op == "NOT":
            return not matches(cond.items[0], record, types)
        results = (matches(c, record, types) for c in cond.items)
        return all(results) if cond.op == "AND" else any(results)
    ftype = types[cond.field]
    actual = _comparable(record.get(cond.field), ftype)
    if cond.op == "LIKE":
        return actual is not None and _like(cond.value).fullmatch(str(actual)) is not None
    if cond.op in ("IN", "NOT IN"):
        found = actual in {_comparable(v, ftype) for v in cond.value}
        return found if cond.op == "IN" else not found
    expected = _comparable(cond.value, ftype)
    if cond.op == "=":
        return bool(actual == expected)
    if cond.op == "!=":
        return bool(actual != expected)
    if actual is None or expected is None:
        return False
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[cond.op](actual, expected)


def execute(
    query: Query, records: Sequence[Mapping[str, Any]], types: Mapping[str, str]
) -> list[Mapping[str, Any]]:
    """Filter, sort and slice `records` (all of `query.object`) as the query asks."""
    rows = [r for r in records if query.where is None or matches(query.where, r, types)]
    for item in reversed(query.order_by):
        ftype = types[item.field]
        present = [r for r in rows if r.get(item.field) is not None]
        nulls = [r for r in rows if r.get(item.field) is None]
        present.sort(key=lambda r: _comparable(r[item.field], ftype), reverse=item.descending)
        rows = nulls + present if item.nulls_first else present + nulls
    end = None if query.limit is None else query.offset + query.limit
    return rows[query.offset : end]
