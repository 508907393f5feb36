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


class TokenCursor:
    """A position in a token list, with the peek/accept/expect helpers a parser needs."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

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

    def _peek(self, ahead: int = 0) -> Token | None:
        index = self.i + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def _peek_kind(self, kind: str) -> bool:
        tok = self._peek()
        return tok is not None and tok.kind == kind

    def _peek_ident(self, word: str) -> bool:
        tok = self._peek()
        return tok is not None and tok.kind == "ident" and str(tok.value).upper() == word

    def _peek_keyword(self, word: str) -> bool:
        return self._peek_keyword_at(word, 0)

    def _peek_keyword_at(self, word: str, ahead: int) -> bool:
        tok = self._peek(ahead)
        return tok is not None and tok.kind == "keyword" and tok.value == word

    def _peek_punct(self, ch: str, ahead: int = 0) -> bool:
        tok = self._peek(ahead)
        return tok is not None and tok.kind == "punct" and tok.value == ch

    def _accept_keyword(self, word: str) -> bool:
        if self._peek_keyword(word):
            self.i += 1
            return True
        return False

    def _accept_punct(self, ch: str) -> bool:
        if self._peek_punct(ch):
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
