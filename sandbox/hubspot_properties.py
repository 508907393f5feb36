"""Property definitions of the HubSpot sandbox: the registry every write validates
against, and the CRM v3 Properties API over it (list, read, create, update, archive),
plus the read-only pipelines API.

The built-in definitions come from `hubspot_schema.PROPERTIES`. Properties created or
changed through the API are kept in SQLite (table ``custom_properties``) as the whole
definition, so they survive a restart. Archiving is soft, as in HubSpot: the definition
is listed with ``archived=true`` and writes to it fail with PROPERTY_DOESNT_EXIST.
HubSpot-defined properties (``hs_*`` and the standard ones) cannot be archived.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.hubspot_errors import HsError, validation
from sandbox.hubspot_http import now_iso, object_body, object_type, query_bool
from sandbox.hubspot_schema import PROPERTIES, PropertyDef, pipeline_json

if TYPE_CHECKING:
    from sandbox.hubspot_store import Store

TYPES = {"string", "number", "date", "datetime", "enumeration", "bool", "phone_number"}
FIELD_TYPES = {
    "booleancheckbox",
    "calculation_equation",
    "checkbox",
    "date",
    "file",
    "html",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def _to_row(pdef: PropertyDef) -> str:
    return json.dumps(dataclasses.asdict(pdef))


def _from_row(text: str) -> PropertyDef:
    data = json.loads(text)
    data["options"] = tuple(tuple(o) for o in data.get("options") or ())
    return PropertyDef(**data)


class PropertyRegistry:
    """Built-in definitions overlaid with those created or changed through the API."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db, self._lock = db, lock
        with lock, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS custom_properties "
                "(type TEXT, name TEXT, def TEXT, PRIMARY KEY (type, name))"
            )
        self._cache: dict[str, dict[str, PropertyDef]] = {}

    def _all(self, ot: str) -> dict[str, PropertyDef]:
        with self._lock:
            if ot not in self._cache:
                defs = {p.name: p for p in PROPERTIES[ot]}
                rows = self._db.execute(
                    "SELECT def FROM custom_properties WHERE type=? ORDER BY rowid", (ot,)
                )
                for (text,) in rows.fetchall():
                    pdef = _from_row(text)
                    defs[pdef.name] = pdef
                self._cache[ot] = defs
            return self._cache[ot]

    def defs(self, ot: str, *, archived: bool = False) -> dict[str, PropertyDef]:
        """Live definitions by name (or only the archived ones)."""
        return {n: p for n, p in self._all(ot).items() if (p.archived_at is not None) == archived}

    def get(self, ot: str, name: str, *, archived: bool = False) -> PropertyDef:
        pdef = self.defs(ot, archived=archived).get(name)
        if pdef is None:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name} on {ot}")
        return pdef

    def save(self, ot: str, pdef: PropertyDef) -> PropertyDef:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO custom_properties VALUES (?, ?, ?)",
                (ot, pdef.name, _to_row(pdef)),
            )
            self._cache.pop(ot, None)
        return pdef


def _options(raw: object, kind: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return (("true", "Yes"), ("false", "No")) if kind == "bool" else ()
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise validation("options must be a list of {label, value} objects")
    out = []
    for option in raw:
        value, label = option.get("value"), option.get("label")
        if not isinstance(value, str) or not isinstance(label, str) or not value:
            raise validation("every option needs a text label and a non-empty text value")
        out.append((value, label))
    if len({v for v, _ in out}) != len(out):
        raise validation("option values must be unique")
    return tuple(out)


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise validation(f"{name} is required and must be text")
    return value


def _kind(body: dict[str, Any], current: PropertyDef | None) -> tuple[str, str]:
    kind = _text(body, "type", required=current is None) or (current.type if current else "")
    field = _text(body, "fieldType", required=current is None) or (
        current.field_type if current else ""
    )
    if kind not in TYPES:
        raise validation(f"type {kind!r} is not one of {sorted(TYPES)}")
    if field not in FIELD_TYPES:
        raise validation(f"fieldType {field!r} is not one of {sorted(FIELD_TYPES)}")
    return ("string" if kind == "phone_number" else kind), field


def created(body: dict[str, Any], registry: PropertyRegistry, ot: str) -> PropertyDef:
    """The definition a PropertyCreate body asks for; 409 if the name is taken."""
    name = _text(body, "name", required=True) or ""
    if not NAME.match(name):
        raise validation(f"Property name {name!r} must be lower case letters, digits and _")
    if name in registry.defs(ot) or name in registry.defs(ot, archived=True):
        raise HsError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.")
    kind, field = _kind(body, None)
    options = _options(body.get("options"), kind)
    if kind == "enumeration" and not options:
        raise validation("an enumeration property needs options")
    unique = body.get("hasUniqueValue", False)
    order = body.get("displayOrder", -1)
    if not isinstance(unique, bool) or not isinstance(order, int):
        raise validation("hasUniqueValue must be a boolean and displayOrder an integer")
    stamp = now_iso()
    return PropertyDef(
        name=name,
        label=_text(body, "label", required=True) or name,
        type=kind,
        field_type=field,
        group=_text(body, "groupName", required=True) or "",
        unique=unique,
        options=options,
        description=_text(body, "description", required=False) or "",
        display_order=order,
        hidden=bool(body.get("hidden", False)),
        created_at=stamp,
        updated_at=stamp,
    )


def updated(body: dict[str, Any], current: PropertyDef) -> PropertyDef:
    """`current` with the fields of a PropertyUpdate body applied."""
    if current.read_only:
        raise validation(f"Property {current.name} has a read-only definition")
    kind, field = _kind(body, current)
    options = current.options if "options" not in body else _options(body["options"], kind)
    if kind == "enumeration" and not options:
        raise validation("an enumeration property needs options")
    order = body.get("displayOrder", current.display_order)
    if not isinstance(order, int):
        raise validation("displayOrder must be an integer")
    return dataclasses.replace(
        current,
        label=_text(body, "label", required=False) or current.label,
        type=kind,
        field_type=field,
        group=_text(body, "groupName", required=False) or current.group,
        options=options,
        description=_text(body, "description", required=False) or current.description,
        display_order=order,
        hidden=bool(body.get("hidden", current.hidden)),
        updated_at=now_iso(),
    )


class PropertyRoutes:
    """``/crm/v3/properties/{objectType}[/{propertyName}]`` and the pipelines API."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def router(self) -> APIRouter:
        r = APIRouter()
        one = "/crm/v3/properties/{ot}/{name}"
        r.add_api_route("/crm/v3/properties/{ot}", self.list_all, methods=["GET"])
        r.add_api_route("/crm/v3/properties/{ot}", self.create, methods=["POST"])
        r.add_api_route(one, self.read, methods=["GET"])
        r.add_api_route(one, self.update, methods=["PATCH"])
        r.add_api_route(one, self.archive, methods=["DELETE"])
        r.add_api_route("/crm/v3/pipelines/{ot}", self.pipelines, methods=["GET"])
        r.add_api_route("/crm/v3/pipelines/{ot}/{pid}", self.pipeline, methods=["GET"])
        r.add_api_route("/crm/v3/pipelines/{ot}/{pid}/stages", self.stages, methods=["GET"])
        return r

    def _registry(self, raw_ot: str) -> tuple[str, PropertyRegistry]:
        return object_type(raw_ot), self.store.registry

    async def list_all(self, ot: str, request: Request) -> Response:
        ot, registry = self._registry(ot)
        defs = registry.defs(ot, archived=query_bool(request, "archived"))
        return JSONResponse({"results": [p.to_json() for p in defs.values()]})

    async def read(self, ot: str, name: str, request: Request) -> Response:
        ot, registry = self._registry(ot)
        archived = query_bool(request, "archived")
        return JSONResponse(registry.get(ot, name, archived=archived).to_json())

    async def create(self, ot: str, request: Request) -> Response:
        ot, registry = self._registry(ot)
        body = await object_body(request, "a PropertyCreate body")
        with self.store.lock:
            pdef = registry.save(ot, created(body, registry, ot))
        return JSONResponse(pdef.to_json(), 201)

    async def update(self, ot: str, name: str, request: Request) -> Response:
        ot, registry = self._registry(ot)
        body = await object_body(request, "a PropertyUpdate body")
        with self.store.lock:
            pdef = registry.save(ot, updated(body, registry.get(ot, name)))
        return JSONResponse(pdef.to_json())

    async def archive(self, ot: str, name: str) -> Response:
        ot, registry = self._registry(ot)
        with self.store.lock:
            pdef = registry.get(ot, name)
            if pdef.hubspot_defined or pdef.read_only:
                raise validation(f"{name} is a HubSpot defined property and cannot be archived")
            registry.save(ot, dataclasses.replace(pdef, archived_at=now_iso()))
        return Response(status_code=204)

    # -- pipelines (read-only) ------------------------------------------------------------
    async def pipelines(self, ot: str) -> Response:
        ot, _ = self._registry(ot)
        return JSONResponse({"results": [pipeline_json()] if ot == "deals" else []})

    def _pipeline(self, raw_ot: str, pid: str) -> dict[str, Any]:
        ot, _ = self._registry(raw_ot)
        if ot != "deals" or pid != "default":
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pid}")
        return pipeline_json()

    async def pipeline(self, ot: str, pid: str) -> Response:
        return JSONResponse(self._pipeline(ot, pid))

    async def stages(self, ot: str, pid: str) -> Response:
        return JSONResponse({"results": self._pipeline(ot, pid)["stages"]})
