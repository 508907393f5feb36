"""The HubSpot CRM v3/v4 routes of the sandbox: objects, batch, search, associations,
properties and pipelines, with HubSpot's shapes, status codes and error bodies.

Handlers parse JSON themselves so a bad body gets HubSpot's VALIDATION_ERROR rather than
FastAPI's 422. Query booleans arrive as Python reprs (``archived=False``) and are read
case-insensitively; list parameters may repeat or be comma-separated.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.hubspot_errors import HsError
from sandbox.hubspot_http import (
    batch_error,
    batch_inputs,
    batch_response,
    json_body,
    now_iso,
    query_after,
    query_bool,
    query_int,
    query_list,
    ref_id,
)
from sandbox.hubspot_schema import (
    DEFAULT_ASSOCIATIONS,
    DEFAULT_PROPERTIES,
    OBJECT_TYPE_IDS,
    PROPERTIES,
    PROPERTY_INDEX,
    SINGULAR,
    pipeline_json,
)
from sandbox.hubspot_search import SearchError, search
from sandbox.hubspot_store import Store, not_found, object_type, public

PAGE_LIMIT, ASSOC_PAGE_LIMIT = 100, 500


def _missing(ot: str, ids: list[str], verb: str) -> dict[str, Any]:
    return batch_error(
        "OBJECT_NOT_FOUND",
        f"Could not {verb} some {SINGULAR[ot]} objects, they may be deleted or not "
        "exist. Check that ids are valid.",
        ids,
    )


class CrmRoutes:
    """The CRM API over one `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def router(self) -> APIRouter:
        r = APIRouter()
        v3, v4 = "/crm/v3/objects/{ot}", "/crm/v4/objects/{ot}/{oid}/associations"
        r.add_api_route(v3, self.list_page, methods=["GET"])
        r.add_api_route(v3, self.create, methods=["POST"])
        r.add_api_route(v3 + "/search", self.search, methods=["POST"])
        for op in ("read", "create", "update", "upsert", "archive"):
            r.add_api_route(f"{v3}/batch/{op}", getattr(self, f"batch_{op}"), methods=["POST"])
        r.add_api_route(v3 + "/{oid}", self.get, methods=["GET"])
        r.add_api_route(v3 + "/{oid}", self.update, methods=["PATCH"])
        r.add_api_route(v3 + "/{oid}", self.archive, methods=["DELETE"])
        r.add_api_route(v4 + "/default/{tot}/{tid}", self.associate_default, methods=["PUT"])
        r.add_api_route(v4 + "/{tot}/{tid}", self.associate, methods=["PUT"])
        r.add_api_route(v4 + "/{tot}", self.associations_page, methods=["GET"])
        r.add_api_route("/crm/v3/properties/{ot}", self.properties, methods=["GET"])
        r.add_api_route("/crm/v3/properties/{ot}/{name}", self.property, methods=["GET"])
        r.add_api_route("/crm/v3/pipelines/{ot}", self.pipelines, methods=["GET"])
        r.add_api_route("/crm/v3/pipelines/{ot}/{pid}", self.pipeline, methods=["GET"])
        r.add_api_route("/crm/v3/pipelines/{ot}/{pid}/stages", self.stages, methods=["GET"])
        return r

    def _show(self, record: dict[str, Any], ot: str, wanted: list[str] | None) -> dict[str, Any]:
        return public(record, wanted, ot, DEFAULT_PROPERTIES[ot])

    # -- single objects ------------------------------------------------------------------
    async def get(self, ot: str, oid: str, request: Request) -> Response:
        ot = object_type(ot)
        record = self.store.get(
            ot,
            oid,
            id_property=request.query_params.get("idProperty"),
            archived=query_bool(request, "archived"),
        )
        shown = self._show(record, ot, query_list(request, "properties"))
        to_types = query_list(request, "associations")
        if to_types:
            shown["associations"] = {}
            for raw in to_types:
                tot = object_type(raw)
                found = self.store.associations(ot, record["id"], tot)
                if found:
                    kind = f"{SINGULAR[ot].lower()}_to_{SINGULAR[tot].lower()}"
                    results = [{"id": tid, "type": kind} for tid, _ in found]
                    shown["associations"][tot] = {"results": results}
        return JSONResponse(shown)

    async def list_page(self, ot: str, request: Request) -> Response:
        ot = object_type(ot)
        limit = query_int(request, "limit", 10, PAGE_LIMIT)
        after = query_after(request)
        rows = self.store.rows(ot, archived=query_bool(request, "archived"))
        if after is not None:
            rows = [(rid, p) for rid, p in rows if int(rid) >= after]
        wanted = query_list(request, "properties")
        page = [self._show(self.store.get(ot, rid), ot, wanted) for rid, _ in rows[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(rows) > limit:
            nxt = rows[limit][0]
            link = str(request.url.include_query_params(after=nxt))
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONResponse(body)

    async def create(self, ot: str, request: Request) -> Response:
        ot = object_type(ot)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise HsError(400, "VALIDATION_ERROR", "body must be an object with properties")
        with self.store.lock:
            record = self.store.create(ot, body.get("properties") or {})
            self._create_associations(ot, record["id"], body.get("associations") or [])
        return JSONResponse(self._show(record, ot, list(body.get("properties") or {})), 201)

    def _create_associations(self, ot: str, rid: str, associations: list[Any]) -> None:
        """``associations`` of a create body: the target type follows from the type ids."""
        if not isinstance(associations, list):
            raise HsError(400, "VALIDATION_ERROR", "associations must be a list")
        for assoc in associations:
            if not isinstance(assoc, dict):
                raise HsError(400, "VALIDATION_ERROR", "each association must be an object")
            to_id = ref_id(assoc.get("to"), "associations[].to")
            try:
                specs = [
                    (str(t["associationCategory"]), int(t["associationTypeId"]))
                    for t in assoc.get("types") or []
                ]
            except (KeyError, TypeError, ValueError):
                raise HsError(400, "VALIDATION_ERROR", "bad association types") from None
            ids = {t for _, t in specs}
            targets = {
                to for (src, to), t in DEFAULT_ASSOCIATIONS.items() if src == ot and t in ids
            }
            if len(targets) != 1:
                raise HsError(
                    400,
                    "VALIDATION_ERROR",
                    f"association types {sorted(ids)} name no object type from {ot}",
                )
            self.store.associate(ot, rid, targets.pop(), to_id, specs)

    async def update(self, ot: str, oid: str, request: Request) -> Response:
        ot = object_type(ot)
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise HsError(400, "VALIDATION_ERROR", "body must be an object with properties")
        record = self.store.update(
            ot, oid, body["properties"], id_property=request.query_params.get("idProperty")
        )
        return JSONResponse(self._show(record, ot, list(body["properties"])))

    async def archive(self, ot: str, oid: str) -> Response:
        self.store.archive(object_type(ot), oid)
        return Response(status_code=204)

    # -- search ----------------------------------------------------------------------------
    async def search(self, ot: str, request: Request) -> Response:
        ot = object_type(ot)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise HsError(400, "VALIDATION_ERROR", "search body must be an object")
        try:
            ids, total, nxt = search(self.store.rows(ot), body, PROPERTY_INDEX[ot])
        except (SearchError, ValueError) as exc:
            raise HsError(400, "VALIDATION_ERROR", f"Invalid search request: {exc}") from None
        wanted = list(body.get("properties") or [])
        result: dict[str, Any] = {
            "total": total,
            "results": [self._show(self.store.get(ot, rid), ot, wanted) for rid in ids],
        }
        if nxt is not None:
            result["paging"] = {"next": {"after": str(nxt), "link": ""}}
        return JSONResponse(result)

    # -- batch -----------------------------------------------------------------------------
    async def batch_read(self, ot: str, request: Request) -> Response:
        ot, started = object_type(ot), now_iso()
        body, inputs = await batch_inputs(request)
        wanted, missing, results = list(body.get("properties") or []), [], []
        for item in inputs:
            try:
                record = self.store.get(
                    ot,
                    str(item.get("id")),
                    id_property=body.get("idProperty"),
                    archived=query_bool(request, "archived"),
                )
            except HsError as exc:
                if exc.status != 404:
                    raise
                missing.append(str(item.get("id")))
                continue
            results.append(self._show(record, ot, wanted))
        errors = [_missing(ot, missing, "get")] if missing else []
        return batch_response(results, errors, started, 200)

    async def batch_create(self, ot: str, request: Request) -> Response:
        ot, started = object_type(ot), now_iso()
        _, inputs = await batch_inputs(request)
        with self.store.lock:
            for item in inputs:  # validate all first: one bad input fails the batch
                self.store.clean(ot, item.get("properties") or {}, creating=True)
            results = []
            for item in inputs:
                record = self.store.create(ot, item.get("properties") or {})
                self._create_associations(ot, record["id"], item.get("associations") or [])
                results.append(self._show(record, ot, list(item.get("properties") or {})))
        return batch_response(results, [], started, 201)

    async def batch_update(self, ot: str, request: Request) -> Response:
        ot, started = object_type(ot), now_iso()
        _, inputs = await batch_inputs(request)
        results, missing = [], []
        with self.store.lock:
            for item in inputs:
                rid, props = str(item.get("id")), item.get("properties") or {}
                try:
                    record = self.store.update(ot, rid, props, id_property=item.get("idProperty"))
                except HsError as exc:
                    if exc.status != 404:
                        raise
                    missing.append(rid)
                    continue
                results.append(self._show(record, ot, list(props)))
        errors = [_missing(ot, missing, "update")] if missing else []
        return batch_response(results, errors, started, 200)

    async def batch_upsert(self, ot: str, request: Request) -> Response:
        ot, started = object_type(ot), now_iso()
        _, inputs = await batch_inputs(request)
        keys = [(str(i.get("idProperty") or ""), str(i.get("id") or "")) for i in inputs]
        if len(set(keys)) != len(keys):
            raise HsError(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        for prop, key in keys:
            pdef = PROPERTY_INDEX[ot].get(prop)
            if pdef is None or not pdef.unique or not key:
                raise HsError(
                    400, "VALIDATION_ERROR", f"idProperty {prop!r} is not a unique property of {ot}"
                )
        results = []
        with self.store.lock:
            for item, (prop, key) in zip(inputs, keys, strict=True):
                props = {**(item.get("properties") or {}), prop: key}
                existing = self.store.find_unique(ot, prop, key)
                if existing is None:
                    record, new = self.store.create(ot, props), True
                else:
                    record, new = self.store.update(ot, existing["id"], props), False
                results.append({**self._show(record, ot, list(props)), "new": new})
        return batch_response(results, [], started, 200)

    async def batch_archive(self, ot: str, request: Request) -> Response:
        ot = object_type(ot)
        _, inputs = await batch_inputs(request)
        for item in inputs:
            self.store.archive(ot, str(item.get("id")))
        return Response(status_code=204)

    # -- associations v4 -------------------------------------------------------------------
    async def associate(self, ot: str, oid: str, tot: str, tid: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        specs = await json_body(request)
        if not isinstance(specs, list) or not specs:
            raise HsError(400, "VALIDATION_ERROR", "body must be a JSON array of association specs")
        try:
            pairs = [(str(s["associationCategory"]), int(s["associationTypeId"])) for s in specs]
        except (KeyError, TypeError, ValueError):
            raise HsError(
                400, "VALIDATION_ERROR", "each spec needs associationCategory and associationTypeId"
            ) from None
        if any(
            c not in ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED") for c, _ in pairs
        ):
            raise HsError(
                400,
                "VALIDATION_ERROR",
                "associationCategory must be HUBSPOT_DEFINED, USER_DEFINED or INTEGRATOR_DEFINED",
            )
        self.store.associate(ot, oid, tot, tid, pairs)
        return JSONResponse(
            {
                "fromObjectTypeId": OBJECT_TYPE_IDS[ot],
                "fromObjectId": oid,
                "toObjectTypeId": OBJECT_TYPE_IDS[tot],
                "toObjectId": tid,
                "labels": [],
            },
            201,
        )

    async def associate_default(self, ot: str, oid: str, tot: str, tid: str) -> Response:
        ot, tot, started = object_type(ot), object_type(tot), now_iso()
        type_id = self.store.associate_default(ot, oid, tot, tid)
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
        result = {"from": {"id": oid}, "to": {"id": tid}, "associationSpec": spec}
        return batch_response([result], [], started, 200)

    async def associations_page(self, ot: str, oid: str, tot: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        self.store.get(ot, oid)
        limit = query_int(request, "limit", ASSOC_PAGE_LIMIT, ASSOC_PAGE_LIMIT)
        found = self.store.associations(ot, oid, tot)
        after = query_after(request)
        if after is not None:
            found = [(tid, specs) for tid, specs in found if int(tid) >= after]
        body: dict[str, Any] = {
            "results": [
                {
                    "toObjectId": tid,
                    "associationTypes": [
                        {"category": c, "typeId": t, "label": None} for c, t in specs
                    ],
                }
                for tid, specs in found[:limit]
            ]
        }
        if len(found) > limit:
            nxt = found[limit][0]
            link = str(request.url.include_query_params(after=nxt))
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONResponse(body)

    # -- properties and pipelines (read-only) ----------------------------------------------
    async def properties(self, ot: str) -> Response:
        return JSONResponse({"results": [p.to_json() for p in PROPERTIES[object_type(ot)]]})

    async def property(self, ot: str, name: str) -> Response:
        pdef = PROPERTY_INDEX[object_type(ot)].get(name)
        if pdef is None:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        return JSONResponse(pdef.to_json())

    async def pipelines(self, ot: str) -> Response:
        return JSONResponse({"results": [pipeline_json()] if object_type(ot) == "deals" else []})

    def _pipeline(self, ot: str, pid: str) -> dict[str, Any]:
        if object_type(ot) != "deals" or pid != "default":
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pid}")
        return pipeline_json()

    async def pipeline(self, ot: str, pid: str) -> Response:
        return JSONResponse(self._pipeline(ot, pid))

    async def stages(self, ot: str, pid: str) -> Response:
        return JSONResponse({"results": self._pipeline(ot, pid)["stages"]})


__all__ = ["CrmRoutes", "not_found"]
