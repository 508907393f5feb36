"""The HubSpot CRM v3 object routes of the sandbox: single objects, list pages, search
and batch, with HubSpot's shapes, status codes and error bodies.

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
from sandbox.hubspot_schema import DEFAULT_PROPERTIES, OBJECT_TYPE_IDS, SEARCHABLE, SINGULAR
from sandbox.hubspot_search import SearchError, search
from sandbox.hubspot_store import Store, object_type, public

PAGE_LIMIT, ASSOC_PAGE_LIMIT = 100, 500


def _names(body: dict[str, Any], key: str) -> list[str]:
    names = body.get(key) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HsError(400, "VALIDATION_ERROR", f"{key} must be a list of property names")
    return names


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
        v3 = "/crm/v3/objects/{ot}"
        r.add_api_route(v3, self.list_page, methods=["GET"])
        r.add_api_route(v3, self.create, methods=["POST"])
        r.add_api_route(v3 + "/search", self.search, methods=["POST"])
        for op in ("read", "create", "update", "upsert", "archive"):
            r.add_api_route(f"{v3}/batch/{op}", getattr(self, f"batch_{op}"), methods=["POST"])
        r.add_api_route(v3 + "/{oid}", self.get, methods=["GET"])
        r.add_api_route(v3 + "/{oid}", self.update, methods=["PATCH"])
        r.add_api_route(v3 + "/{oid}", self.archive, methods=["DELETE"])
        return r

    def _show(
        self,
        record: dict[str, Any],
        ot: str,
        wanted: list[str] | None,
        history: list[str] | None = None,
    ) -> dict[str, Any]:
        shown = public(record, wanted, self.store.props(ot), DEFAULT_PROPERTIES[ot])
        if history:
            shown["propertiesWithHistory"] = self.store.history(ot, record["id"], history)
        return shown

    # -- single objects ------------------------------------------------------------------
    async def get(self, ot: str, oid: str, request: Request) -> Response:
        ot = object_type(ot)
        record = self.store.get(
            ot,
            oid,
            id_property=request.query_params.get("idProperty"),
            archived=query_bool(request, "archived"),
        )
        wanted = query_list(request, "properties")
        shown = self._show(record, ot, wanted, query_list(request, "propertiesWithHistory"))
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
        archived = query_bool(request, "archived")
        rows = self.store.rows(ot, archived=archived)
        if after is not None:
            rows = [(rid, p) for rid, p in rows if int(rid) >= after]
        wanted, history = (
            query_list(request, "properties"),
            query_list(request, "propertiesWithHistory"),
        )
        page = [
            self._show(self.store.get(ot, rid, archived=archived), ot, wanted, history)
            for rid, _ in rows[:limit]
        ]
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
                to
                for to in OBJECT_TYPE_IDS
                if ids and ids <= {t for _, t, _ in self.store.assoc_types.specs(ot, to)}
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
            ids, total, nxt = search(
                self.store.rows(ot), body, self.store.props(ot), SEARCHABLE.get(ot, ())
            )
        except (SearchError, ValueError) as exc:
            raise HsError(400, "VALIDATION_ERROR", f"Invalid search request: {exc}") from None
        wanted = _names(body, "properties")
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
        wanted, missing, results = _names(body, "properties"), [], []
        history = _names(body, "propertiesWithHistory")
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
            results.append(self._show(record, ot, wanted, history))
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
            pdef = self.store.props(ot).get(prop)
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
