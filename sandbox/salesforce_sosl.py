"""A small SOSL engine for the sandbox's ``/search/?q=`` resource.

``FIND {term} [IN ALL|NAME|EMAIL FIELDS] [RETURNING Object[(fields [WHERE ...]
[ORDER BY ...] [LIMIT n])], ...] [LIMIT n]``. The term is one or more words (all must
match, or any with ``OR``), ``*`` and ``?`` wildcards, ``"quoted phrases"``; a word
matches a whole word of a text field, case-insensitively, as Salesforce's search index
does. Each RETURNING object's clause is evaluated by the SOQL engine; without RETURNING
the searchable objects answer their ``Id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.salesforce_soql import SoqlError, parse, run
from sandbox.salesforce_soql_ast import Entity
from sandbox.salesforce_soql_eval import Lookup, Record

SEARCHABLE = ("Account", "Contact", "Opportunity", "Product2", "Order", "Task")
TEXT_TYPES = {"string", "textarea", "email", "picklist"}
FIND_RE = re.compile(r"^\s*FIND\s*\{((?:[^}\\]|\\.)*)\}\s*(.*)$", re.IGNORECASE | re.DOTALL)
IN_RE = re.compile(r"^IN\s+(ALL|NAME|EMAIL|PHONE)\s+FIELDS\s*(.*)$", re.IGNORECASE | re.DOTALL)
SPEC_RE = re.compile(r"^\s*(\w+)\s*(?:\((.*)\))?\s*(?:LIMIT\s+(\d+))?\s*$", re.I | re.S)
CLAUSE_RE = re.compile(r"\b(?:WHERE|ORDER\s+BY|LIMIT)\b", re.IGNORECASE)
LIMIT_RE = re.compile(r"^(.*?)\s*\bLIMIT\s+(\d+)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Search:
    """A parsed SOSL search."""

    groups: tuple[tuple[re.Pattern[str], ...], ...]  # OR of ANDs of word patterns
    scope: str
    returning: tuple[tuple[str, str], ...]  # (object, SOQL text for its clause)
    limit: int | None


def _malformed(message: str) -> SoqlError:
    return SoqlError(message, "MALFORMED_SEARCH")


def _word(pattern: str) -> re.Pattern[str]:
    body = "".join(r"\w*" if ch == "*" else r"\w" if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _terms(text: str) -> tuple[tuple[re.Pattern[str], ...], ...]:
    text = re.sub(r"\\(.)", r"\1", text).strip()
    if len(text.replace("*", "").replace("?", "")) < 2:
        raise _malformed("search term must be longer than one character")
    groups = []
    for alternative in re.split(r"\s+OR\s+", text, flags=re.IGNORECASE):
        words = re.findall(r'"[^"]+"|\S+', alternative)
        kept = [w.strip('"') for w in words if w.upper() != "AND"]
        if not kept:
            raise _malformed(f"nothing to search for in {{{text}}}")
        groups.append(tuple(_word(w) for w in kept))
    return tuple(groups)


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise _malformed("unbalanced parentheses in RETURNING")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise _malformed("unbalanced parentheses in RETURNING")
    return [*parts, text[start:]]


def parse_search(text: str) -> Search:
    """Parse `text`; raises `SoqlError` (MALFORMED_SEARCH) like Salesforce would."""
    match = FIND_RE.match(text)
    if match is None:
        raise _malformed("a search must start with FIND {term}")
    groups, rest = _terms(match.group(1)), match.group(2).strip()
    scope = "ALL"
    if found := IN_RE.match(rest):
        scope, rest = found.group(1).upper(), found.group(2).strip()
    limit = None
    returning: list[tuple[str, str]] = []
    if rest.upper().startswith("RETURNING"):
        for part in _split_top(rest[len("RETURNING") :]):
            spec = SPEC_RE.match(part)
            if spec is None:
                raise _malformed(f"unexpected RETURNING clause: {part.strip()}")
            obj, inner, outer_limit = spec.groups()
            limit = int(outer_limit) if outer_limit else limit
            returning.append((obj, _clause_soql(obj, inner or "Id")))
        rest = ""
    elif tail := LIMIT_RE.match(rest):
        rest, limit = tail.group(1).strip(), int(tail.group(2))
    if rest:
        raise _malformed(f"unexpected token: {rest.split()[0]}")
    return Search(groups, scope, tuple(returning), limit)


def _clause_soql(obj: str, inner: str) -> str:
    """``Name, Industry WHERE ... ORDER BY ... LIMIT n`` as a SOQL query on `obj`."""
    found = CLAUSE_RE.search(inner)
    cut = found.start() if found else len(inner)
    return f"SELECT {inner[:cut]} FROM {obj} {inner[cut:]}"  # noqa: S608


def search(
    query: Search,
    schema: dict[str, Entity],
    records: Callable[[str], Sequence[Record]],
    lookup: Lookup,
    url: Callable[[str, str], str],
) -> list[dict[str, Any]]:
    """The ``searchRecords`` of `query`, object by object."""
    targets = query.returning or tuple((o, f"SELECT Id FROM {o}") for o in SEARCHABLE)  # noqa: S608
    out: list[dict[str, Any]] = []
    for _obj, soql in targets:
        parsed = parse(soql, schema)
        entity = schema[parsed.object]
        fields = _searched_fields(entity, query.scope)
        hits = [r for r in records(parsed.object) if _hit(query, r, fields)]
        out += run(parsed, hits, lookup, url)
    return out[: query.limit] if query.limit is not None else out


def _searched_fields(entity: Entity, scope: str) -> list[str]:
    if scope == "NAME":
        return [n for n in entity.types if n in ("Name", "Subject")]
    if scope == "EMAIL":
        return [n for n, t in entity.types.items() if t == "email"]
    if scope == "PHONE":
        return [n for n, t in entity.types.items() if t == "phone"]
    return [n for n, t in entity.types.items() if t in TEXT_TYPES]


def _hit(query: Search, record: Record, fields: list[str]) -> bool:
    text = " ".join(str(record.get(f) or "") for f in fields)
    return any(all(p.search(text) for p in group) for group in query.groups)
