"""The Salesforce REST data API of the sandbox: sObjects, SOQL queries and collections.

Handlers return exactly what the REST API documents: 201 ``{"id","success","errors"}`` on
create, 204 on update/delete, 201/200 with ``created`` on upsert and 300 with the matching
record URLs, query pages of ``records``/``done``/``totalSize``/``nextRecordsUrl`` (an
absolute path), and collection results with per-record ``statusCode`` errors.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.common import FaultControls
from sandbox.salesforce_auth import Auth
from sandbox.salesforce_errors import MethodNotAllowed, MultipleMatches, SfError
from sandbox.salesforce_schema import OBJECTS, ObjectDef, child_relationships
from sandbox.salesforce_soql import parse_datetime
from sandbox.salesforce_store import CASCADE, Record, Store
from sandbox.salesforce_values import normalize_id, sf_datetime

MAX_COLLECTION = 200
#: The sub-paths ``sobjects/{rest:path}`` dispatches to (as the stats name them) and the
#: methods each serves, as the REST API documents them; another method is a 405.
SOBJECT_METHODS: dict[str, tuple[str, ...]] = {
    "sobjects": ("GET",),  # describe global
    "sobjects/{object}/": ("GET", "POST"),  # basic information; create
    "sobjects/{object}/describe": ("GET",),
    "sobjects/{object}/updated": ("GET",),
    "sobjects/{object}/deleted": ("GET",),
    "sobjects/{object}/{id}": ("GET", "PATCH", "DELETE"),
    "sobjects/{object}/{field}/{value}": ("GET", "PATCH", "DELETE"),  # by external id
}


@dataclass
class SandboxState:
    """Everything one sandbox app holds: the org, logins, faults, limits and counters."""

    store: Store
    auth: Auth
    faults: FaultControls
    api_version: str
    allocation: int = 15_000
    used: int = 0
    lock_count: int = 0
    lock_rate: float = 0.0
    stats: Counter[str] = field(default_factory=Counter)
    #: API calls as the daily allocation counts them (a composite is one, a composite
    #: batch one per subrequest), faulted ones included; and subrequests by route.
    calls: int = 0
    subrequests: Counter[str] = field(default_factory=Counter)
    lost_responses: int = 0
    cursors: OrderedDict[str, tuple[list[dict[str, Any]], int]] = field(default_factory=OrderedDict)
    mutex: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def take_lock_fault(self) -> bool:
        """Whether this write loses the race for a row lock (UNABLE_TO_LOCK_ROW)."""
        with self.mutex:
            if self.lock_count > 0:
                self.lock_count -= 1
                return True
            return bool(self.lock_rate) and self.rng.random() < self.lock_rate

    def lose_this_response(self) -> bool:
        """Whether this write's answer is lost on the way back (it was applied)."""
        with self.mutex:
            if self.lost_responses <= 0:
                return False
            self.lost_responses -= 1
            return True

    def url(self, obj: str, rid: str) -> str:
        return f"/services/data/v{self.api_version}/sobjects/{obj}/{rid}"


def object_def(name: str) -> ObjectDef:
    for obj in OBJECTS.values():
        if obj.name.lower() == name.lower():
            return obj
    raise SfError(404, "NOT_FOUND", f"The requested resource does not exist: {name}")


async def read_json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except json.JSONDecodeError as exc:
        raise SfError(400, "JSON_PARSER_ERROR", f"malformed JSON: {exc.msg}") from exc


def _body_record(data: Any) -> Record:
    if not isinstance(data, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "the request body must be a JSON object")
    return data


def _check_unmodified_since(request: Request, record: Record) -> None:
    """``If-Unmodified-Since`` on PATCH: 412 if the record changed after that instant."""
    header = request.headers.get("if-unmodified-since")
    if header is None:
        return
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError) as exc:
        raise SfError(400, "INVALID_HEADER_TYPE", f"invalid If-Unmodified-Since: {header}") from exc
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if parse_datetime(record["LastModifiedDate"]) > since:
        raise SfError(
            412,
            "PRECONDITION_FAILED",
            "The requested resource has been modified since the If-Unmodified-Since date"
            f" ({record['LastModifiedDate']})",
        )


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise MethodNotAllowed(method, allowed)


def _lock_check(state: SandboxState) -> None:
    if state.take_lock_fault():
        raise SfError(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")


class DataApi:
    """The ``/services/data/v{ver}/...`` handlers, bound to one sandbox's state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # -- sObjects ------------------------------------------------------------------------
    async def sobjects(self, request: Request) -> Response:
        state = self.state
        user = state.auth.authenticate(request)
        raw = request.scope.get("raw_path", b"").decode().split("?")[0]
        parts = [unquote(p) for p in raw.split("/sobjects", 1)[1].split("/")[1:]]
        while parts and parts[-1] == "" and len(parts) > 1:
            parts.pop()
        method = request.method
        if not parts or parts[0] == "":
            request.state.template = "sobjects"
            _allow(method, SOBJECT_METHODS["sobjects"])
            return JSONResponse(self._describe_global())
        odef = object_def(parts[0])
        request.state.sobject = odef.name
        rest = parts[1:]
        template = "sobjects/{object}/" + "/".join(
            ["{id}"]
            if len(rest) == 1 and rest[0] not in ("describe", "updated", "deleted")
            else ["{field}", "{value}"]
            if len(rest) == 2
            else rest
        )
        request.state.template = template
        if template in SOBJECT_METHODS:
            _allow(method, SOBJECT_METHODS[template])
        if not rest or rest == [""]:
            if method == "POST":
                _lock_check(state)
                rid = state.store.create(odef.name, _body_record(await read_json(request)), user)
                return JSONResponse({"id": rid, "success": True, "errors": []}, status_code=201)
            return JSONResponse(
                {
                    "objectDescribe": _describe(odef, self.state.api_version, brief=True),
                    "recentItems": [],
                }
            )
        if rest == ["describe"]:
            return JSONResponse(_describe(odef, self.state.api_version))
        if rest[0] in ("updated", "deleted") and len(rest) == 1:
            return JSONResponse(self._updated(odef, rest[0], request))
        if len(rest) == 1:
            return await self._by_id(request, odef, rest[0], user)
        if len(rest) == 2:
            return await self._by_external_id(request, odef, rest[0], rest[1], user)
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    async def _by_id(self, request: Request, odef: ObjectDef, rid: str, user: str) -> Response:
        store, method = self.state.store, request.method
        if method == "GET":
            return JSONResponse(self._render(odef, store.get(odef.name, rid), request))
        _lock_check(self.state)
        if method == "PATCH":
            data = _body_record(await read_json(request))
            _check_unmodified_since(request, store.get(odef.name, rid))
            store.update(odef.name, rid, data, user)
        else:
            store.delete(odef.name, rid, user)
        return Response(status_code=204)

    async def _by_external_id(
        self, request: Request, odef: ObjectDef, fname: str, value: str, user: str
    ) -> Response:
        store, state = self.state.store, self.state
        fdef = odef.get(fname)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist: {fname}")
        if request.method == "PATCH":
            _lock_check(state)
            data = _body_record(await read_json(request))
            rid, created = store.upsert(odef.name, fdef.name, value, data, user)
            body = {"id": rid, "success": True, "errors": [], "created": created}
            return JSONResponse(body, status_code=201 if created else 200)
        matches = store.find(odef.name, fdef.name, value)
        if len(matches) > 1:
            raise MultipleMatches(odef.name, [str(r["Id"]) for r in matches])
        if not matches:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "DELETE":
            _lock_check(state)
            store.delete(odef.name, matches[0]["Id"], user)
            return Response(status_code=204)
        return JSONResponse(self._render(odef, matches[0], request))

    def _render(self, odef: ObjectDef, record: Record, request: Request) -> Record:
        wanted = request.query_params.get("fields")
        names = [f.strip() for f in wanted.split(",")] if wanted else [f.name for f in odef.fields]
        out: Record = {
            "attributes": {"type": odef.name, "url": self.state.url(odef.name, record["Id"])}
        }
        for name in names:
            fdef = odef.get(name)
            if fdef is None:
                raise SfError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {odef.name}"
                )
            out[fdef.name] = record.get(fdef.name)
        return out

    def _updated(self, odef: ObjectDef, kind: str, request: Request) -> dict[str, object]:
        try:
            start = parse_datetime(request.query_params["start"])
            end = parse_datetime(request.query_params["end"])
        except (KeyError, ValueError) as exc:
            raise SfError(
                400, "INVALID_REPLICATION_DATE", "start and end are required dates"
            ) from exc
        if end < start:
            raise SfError(400, "INVALID_REPLICATION_DATE", "end date is before start date")
        latest = sf_datetime(end.replace(second=0, microsecond=0))
        if kind == "deleted":
            earliest = sf_datetime(datetime.now(UTC) - timedelta(days=15))
            gone = [
                {"id": r["Id"], "deletedDate": r["DeletedDate"]}
                for r in self.state.store.deleted(odef.name)
                if start <= parse_datetime(r["DeletedDate"]) <= end
            ]
            return {
                "deletedRecords": gone,
                "earliestDateAvailable": earliest,
                "latestDateCovered": latest,
            }
        ids = [
            r["Id"]
            for r in self.state.store.records(odef.name)
            if start <= parse_datetime(r["SystemModstamp"]) <= end
        ]
        return {"ids": ids, "latestDateCovered": latest}

    def _describe_global(self) -> dict[str, object]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": MAX_COLLECTION,
            "sobjects": [
                _describe(o, self.state.api_version, brief=True) for o in OBJECTS.values()
            ],
        }

    # -- collections ---------------------------------------------------------------------
    async def collection(self, request: Request) -> Response:
        """POST create, PATCH update, DELETE by ids; PATCH .../{Object}/{Field} upserts."""
        state = self.state
        user = state.auth.authenticate(request)
        obj, ext = request.path_params.get("object"), request.path_params.get("field")
        request.state.template = "composite/sobjects" + ("/{object}/{field}" if obj else "")
        if request.method == "DELETE":
            ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
            items: list[Any] = ids
        else:
            body = await read_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise SfError(400, "JSON_PARSER_ERROR", "expected {allOrNone, records: [...]}")
            items, all_or_none = body["records"], bool(body.get("allOrNone", False))
        if len(items) > MAX_COLLECTION:
            raise SfError(400, "EXCEEDED_ID_LIMIT", f"record limit reached; max {MAX_COLLECTION}")
        odef = object_def(obj) if obj else None
        results: list[dict[str, Any]] = []
        failed = False
        try:
            with state.store.transaction():
                for item in items:
                    try:
                        with state.store.transaction():
                            results.append(
                                self._collection_item(request.method, item, odef, ext, user)
                            )
                    except SfError as exc:
                        failed = True
                        results.append(_item_error(item, exc))
                if failed and all_or_none:
                    raise _RollBack
        except _RollBack:
            results = [r if r["errors"] else _rolled_back(r) for r in results]
        return JSONResponse(results)

    def _collection_item(
        self, method: str, item: Any, odef: ObjectDef | None, ext: str | None, user: str
    ) -> dict[str, Any]:
        store = self.state.store
        _lock_check(self.state)
        if method == "DELETE":
            rid = normalize_id(str(item))  # 15 or 18 characters; answers with the 18
            obj = store.object_of(rid)
            if obj is None:
                raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
            store.delete(obj, rid, user)
            return {"id": rid, "success": True, "errors": []}
        record = _body_record(item)
        attrs = record.get("attributes")
        type_name = attrs.get("type") if isinstance(attrs, dict) else None
        target = odef or object_def(str(type_name or ""))
        data = {k: v for k, v in record.items() if k not in ("attributes", "Id", "id")}
        if odef is not None and ext is not None:
            fdef = odef.get(ext)
            value = record.get(fdef.name) if fdef is not None else None
            if value is None:
                raise SfError(
                    400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{ext}]", [ext]
                )
            rid, created = store.upsert(target.name, ext, str(value), data, user)
            return {"id": rid, "success": True, "errors": [], "created": created}
        if method == "POST":
            if record.get("Id") or record.get("id"):
                raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call")
            rid = store.create(target.name, data, user)
            return {"id": rid, "success": True, "errors": []}
        rid = str(record.get("Id") or record.get("id") or "")
        if not rid:
            raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        store.update(target.name, rid, data, user)
        return {"id": store.get(target.name, rid)["Id"], "success": True, "errors": []}

    def limits(self, request: Request) -> Response:
        self.state.auth.authenticate(request)
        request.state.template = "limits"
        max_ = self.state.allocation
        return JSONResponse(
            {"DailyApiRequests": {"Max": max_, "Remaining": max_ - self.state.used}}
        )


class _RollBack(Exception):
    """Undo an allOrNone collection after collecting every record's result."""


def _item_error(item: Any, exc: SfError) -> dict[str, Any]:
    rid = item.get("Id") if isinstance(item, dict) else item if isinstance(item, str) else None
    error = {"statusCode": exc.code, "message": exc.message, "fields": exc.fields}
    return {"id": rid, "success": False, "errors": [error]}


def _rolled_back(result: dict[str, Any]) -> dict[str, Any]:
    message = (
        "Record rolled back because not all records were valid and the request was using "
        "AllOrNone header"
    )
    error = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": message, "fields": []}
    return {"id": None, "success": False, "errors": [error]}


def _describe(odef: ObjectDef, version: str, *, brief: bool = False) -> dict[str, object]:
    base = f"/services/data/v{version}/sobjects/{odef.name}"
    out: dict[str, object] = {
        "name": odef.name,
        "label": odef.name,
        "keyPrefix": odef.prefix,
        "custom": False,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }
    if not brief:
        out["labelPlural"] = f"{odef.name}s"
        out["fields"] = [f.describe() for f in odef.fields]
        out["childRelationships"] = [
            {
                "childSObject": child,
                "field": fdef.name,
                "relationshipName": rel,
                "cascadeDelete": (child, fdef.name) in CASCADE.get(odef.name, ()),
                "restrictedDelete": False,
                "deprecatedAndHidden": False,
            }
            for rel, child, fdef in child_relationships(odef.name)
        ]
    return out
