"""SOQL tokens: keywords, names, literals (strings, numbers, dates, date literals).

Date literals (``TODAY``, ``LAST_N_DAYS:7``...) become ``dateliteral`` tokens whose value
is ``(NAME, n)``; which names exist comes from `sandbox.salesforce_soql_dates`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sandbox.salesforce_soql_dates import N_LITERALS, RANGE_LITERALS

KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IN", "ORDER", "BY", "ASC",
    "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT",
    "GROUP", "HAVING", "INCLUDES", "EXCLUDES",
}  # fmt: skip
TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<string>')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<nliteral>[A-Za-z_]+:\d+)
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
    """One token: kind (keyword, ident, string, number, date, datetime, dateliteral, op,
    punct) and its value."""

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
        if kind != "ws":
            tokens.append(_token(kind, raw, m.start()))
    return tokens


def _token(kind: str, raw: str, pos: int) -> Token:
    upper = raw.upper()
    if kind == "ident" and upper in KEYWORDS:
        return Token("keyword", upper, pos)
    if kind == "ident" and upper in RANGE_LITERALS:
        return Token("dateliteral", (upper, 0), pos)
    if kind == "nliteral":
        name, _, n = upper.partition(":")
        if name not in N_LITERALS:
            raise SoqlError(f"unexpected token: '{raw}' at column {pos + 1}")
        return Token("dateliteral", (name, int(n)), pos)
    if kind == "number":
        return Token("number", float(raw) if "." in raw else int(raw), pos)
    try:
        if kind == "datetime":
            return Token("datetime", parse_datetime(raw), pos)
        if kind == "date":
            return Token("date", date.fromisoformat(raw), pos)
    except ValueError as exc:
        raise SoqlError(f"invalid {kind}: {raw} at column {pos + 1}") from exc
    return Token(kind, raw, pos)


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
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
