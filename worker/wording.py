"""Wording for people: roles and lists as words, internal keys left out.

The workflow's status and audit trail are written for machines first: role names
(`sales_manager`), contract names (`sales_to_ops`), wait keys (`close:t0`) and, in a
few places, Python lists. Every surface a person reads (CLI, web pages, notices) passes
that text through `humane()`, and names roles with `role()` / `words()`. Ids a person
may paste back into a command (deal ids, workflow ids, stage names) are never changed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import cache

#: Role words written in capitals (`vp` → `VP`).
ACRONYMS = frozenset({"vp", "cfo", "ceo", "cro", "coo", "am", "sla", "crm", "po"})

_PY_LIST = re.compile(r"\[(?:'[^'\\]*'(?:, )?)*\]")
_KEY_SUFFIX = re.compile(r"\b([a-z][a-z_]*)(?::[tr]\d+)+(?::(?:accept|fields|escalated))?\b")
_KEY_PART = re.compile(r"\b([a-z][a-z_]*):(?:accept|fields|escalated)\b")
_APPROVAL = re.compile(r"\b(?:approval|deal_desk(?::r\d+)?):([a-z][a-z_]*)(?::escalated)?\b")
_TIER = re.compile(r"\b([Tt]ier) ([a-z][a-z_]*)\b")
_HANDOFF = re.compile(r"\b([a-z]+)_to_([a-z]+)\b")


def role(name: str) -> str:
    """`sales_manager` → `sales manager`, `vp` → `VP`; an email stays as it is."""
    if "@" in name:
        return name
    return " ".join(w.upper() if w in ACRONYMS else w for w in name.split("_"))


def words(names: Iterable[str], empty: str = "nobody") -> str:
    """People or roles as words: `sales manager, VP` (never `['sales_manager', 'vp']`)."""
    out = [role(n) for n in names]
    return ", ".join(out) if out else empty


@cache
def _roles() -> re.Pattern[str]:
    """The default policy's role and tier names, as whole words (not inside an email)."""
    from workflows.policy import default_policy

    policy = default_policy()
    names = {*policy.people, *(t.name for t in policy.discounts.tiers)} - {"auto"}
    multi = sorted((n for n in names if "_" in n or n in ACRONYMS), key=len, reverse=True)
    return re.compile(r"(?<![\w.@/-])(" + "|".join(map(re.escape, multi)) + r")(?![\w.@/-])")


def _list_words(match: re.Match[str]) -> str:
    return words(ast.literal_eval(match.group(0)))


def humane(text: str) -> str:
    """Text from the workflow, as a person should read it: Python lists become words,
    wait keys lose their internal suffixes (`close:t0` → `close`), and a handoff between
    teams reads `sales → ops` (in a stage change `a → b`, `sales to ops`)."""
    text = _PY_LIST.sub(_list_words, text)
    text = _APPROVAL.sub(lambda m: f"{role(m.group(1))} approval", text)
    text = _KEY_SUFFIX.sub(r"\1", text)
    text = _KEY_PART.sub(r"\1", text)
    text = _TIER.sub(lambda m: f"{m.group(1)} {role(m.group(2))}", text)
    text = _roles().sub(lambda m: role(m.group(1)), text)
    text = text.replace(" → to → ", " → ")
    arrow = " to " if " → " in text else " → "
    return _HANDOFF.sub(lambda m: f"{m.group(1)}{arrow}{m.group(2)}", text)
