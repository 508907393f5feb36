"""Compare before overwrite: which fields the CRM changed since Handoff last saw them.

Values are compared as text, with empty and missing alike and numbers normalised
(``30`` equals ``30.0``). A field already holding the value Handoff is about to write is
no conflict: that is Handoff's own earlier write (a retried activity), not a person's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from connectors.base import FieldValue


def as_text(value: FieldValue | object) -> str:
    """A CRM or canonical value as comparable text ("" when empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def same(a: FieldValue | object, b: FieldValue | object) -> bool:
    """Whether two values are equal as the CRM shows them."""
    ta, tb = as_text(a), as_text(b)
    if ta == tb:
        return True
    try:
        fa, fb = float(ta), float(tb)
    except ValueError:
        return False
    return math.isfinite(fa) and fa == fb


def conflicts(
    expected: Mapping[str, str | None],
    fields: Mapping[str, FieldValue],
    current: Mapping[str, object],
) -> dict[str, str | None]:
    """Fields to be written whose CRM value is neither what Handoff saw nor what it writes:
    canonical field → the value the CRM holds now (None when empty)."""
    found: dict[str, str | None] = {}
    for name, seen in expected.items():
        if name not in fields:
            continue
        now = current.get(name)
        if same(now, seen) or same(now, fields[name]):
            continue
        found[name] = as_text(now) or None
    return found
