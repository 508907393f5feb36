"""Salesforce ids, wire datetimes, and how a JSON value becomes a field's stored value."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from sandbox.salesforce_errors import SfError
from sandbox.salesforce_schema import FieldDef
from sandbox.salesforce_soql_lexer import parse_datetime

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_RE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


def checksum_id(id15: str) -> str:
    """The 18-character, case-safe form of a 15-character Salesforce id."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += SUFFIX[bits]
    return id15 + suffix


def normalize_id(value: str) -> str:
    """Accept a 15- or 18-character id and return the 18-character one."""
    if not ID_RE.match(value):
        raise SfError(400, "MALFORMED_ID", f"malformed id {value}")
    return checksum_id(value[:15])


def sf_datetime(moment: datetime) -> str:
    """Salesforce's wire format for datetimes: ``2024-05-01T12:00:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def coerce(fdef: FieldDef, raw: object, object_of: Callable[[str], str | None]) -> object:
    """A JSON value as the field stores it, or the SfError Salesforce answers."""
    if raw is None:
        return False if fdef.type == "boolean" else None
    try:
        if fdef.type in ("string", "textarea", "email", "picklist"):
            text = str(raw) if not isinstance(raw, bool | dict | list) else None
            if text is None:
                raise ValueError(raw)
            if fdef.length and len(text) > fdef.length:
                raise SfError(
                    400,
                    "STRING_TOO_LONG",
                    f"{fdef.label}: data value too large: {text[:20]}..."
                    f" (max length={fdef.length})",
                    [fdef.name],
                )
            if fdef.picklist and text not in fdef.picklist:
                raise SfError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{fdef.label}: bad value for restricted picklist field: {text}",
                    [fdef.name],
                )
            return text
        if fdef.type in ("currency", "percent", "double", "int"):
            if isinstance(raw, bool):
                raise ValueError(raw)
            number = float(raw)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise ValueError(raw)
            return int(number) if fdef.type == "int" else number
        if fdef.type == "boolean":
            if not isinstance(raw, bool):
                raise ValueError(raw)
            return raw
        if fdef.type == "date":
            return date.fromisoformat(str(raw)).isoformat()
        if fdef.type == "datetime":
            return sf_datetime(parse_datetime(str(raw)))
        if fdef.type == "reference":
            rid = normalize_id(str(raw))
            target = object_of(rid)
            if target not in fdef.reference_to:
                raise SfError(
                    400,
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id {raw}",
                    [fdef.name],
                )
            return rid
    except (ValueError, TypeError) as exc:
        raise SfError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {fdef.type} from value {raw!r} for field {fdef.name}",
            [fdef.name],
        ) from exc
    raise SfError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"{fdef.name} is read-only")
