"""Property values as the HubSpot sandbox stores them: validated against the property's
type and normalised to the text HubSpot returns (numbers without a trailing ``.0``,
booleans lower case, datetimes as ``2024-05-01T12:00:00.000Z``, dates ISO)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sandbox.hubspot_http import iso_ms
from sandbox.hubspot_schema import PropertyDef
from sandbox.hubspot_search import to_epoch_ms


def bad_value(name: str, code: str, message: str) -> dict[str, Any]:
    return {"message": message, "code": code, "context": {"propertyName": [name]}}


def normalise(pdef: PropertyDef, raw: object) -> tuple[str | None, dict[str, Any] | None]:
    """(stored text or None to clear, error detail or None)."""
    if raw is None or raw == "":
        return None, None
    text = str(raw).strip()
    name = pdef.name
    try:
        if pdef.type == "number":
            number = float(text)
            return (str(int(number)) if number.is_integer() else repr(number)), None
        if pdef.type == "bool":
            if text.lower() not in ("true", "false"):
                return None, bad_value(name, "INVALID_BOOLEAN", f'"{text}" is not a valid boolean')
            return text.lower(), None
        if pdef.type == "datetime":
            ms = to_epoch_ms(text)
            return iso_ms(datetime.fromtimestamp(ms / 1000, UTC)), None
        if pdef.type == "date":
            if re.fullmatch(r"\d+", text):
                return datetime.fromtimestamp(int(text) / 1000, UTC).date().isoformat(), None
            return date.fromisoformat(text[:10]).isoformat(), None
    except (ValueError, OverflowError):
        return None, bad_value(
            name, f"INVALID_{pdef.type.upper()}", f'"{text}" is not a valid {pdef.type}'
        )
    if pdef.type == "enumeration" and text not in {v for v, _ in pdef.options}:
        allowed = ", ".join(v for v, _ in pdef.options)
        return None, bad_value(
            name, "INVALID_OPTION", f'"{text}" was not one of the allowed options: [{allowed}]'
        )
    return text, None
