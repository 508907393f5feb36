"""The CRM v4 associations routes of the HubSpot sandbox: one pair (create with types,
create default, list, delete), batches (create, read, archive, archive labels, associate
default) and association labels. Shapes follow HubSpot's v4 spec: ids are strings, a
type is ``{category, typeId, label}``, invented type ids are refused with 400.

Labels are served at the client's path ``/crm/v4/associations/{from}/{to}/labels`` and
at the spec's ``/crm/associations/v4/{from}/{to}/labels``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.hubspot_assoc_types import Spec
from sandbox.hubspot_errors import HsError, validation
from sandbox.hubspot_http import (
    batch_error,
    batch_inputs,
    batch_response,
    cursor,
    json_body,
    now_iso,
    object_body,
    object_type,
    query_after,
    query_int,
    ref_id,
)
from sandbox.hubspot_schema import OBJECT_TYPE_IDS
from sandbox.hubspot_store import Store

PAGE_LIMIT = 500


def specs_of(raw: object) -> list[Spec]:
    """``[{associationCategory, associationTypeId}]`` as (category, typeId) pairs."""
    if not isinstance(raw, list) or not raw:
        raise validation("types must be a non-empty list of association specs")
    try:
        pairs = [(str(s["associationCategory"]), int(s["associationTypeId"])) for s in raw]
    except (KeyError, TypeError, ValueError):
        raise validation("each spec needs associationCategory and associationTypeId") from None
    return pairs


class AssociationRoutes:
    """The v4 associations API over one `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def router(self) -> APIRouter:
        r = APIRouter()
        one = "/crm/v4/objects/{ot}/{oid}/associations"
        r.add_api_route(one + "/default/{tot}/{tid}", self.associate_default, methods=["PUT"])
        r.add_api_route(one + "/{tot}/{tid}", self.associate, methods=["PUT"])
        r.add_api_route(one + "/{tot}/{tid}", self.remove, methods=["DELETE"])
        r.add_api_route(one + "/{tot}", self.page, methods=["GET"])
        batch = "/crm/v4/associations/{ot}/{tot}/batch"
        r.add_api_route(batch + "/create", self.batch_create, methods=["POST"])
        r.add_api_route(batch + "/read", self.batch_read, methods=["POST"])
        r.add_api_route(batch + "/archive", self.batch_archive, methods=["POST"])
        r.add_api_route(batch + "/labels/archive", self.batch_archive_labels, methods=["POST"])
        r.add_api_route(batch + "/associate/default", self.batch_default, methods=["POST"])
        for labels in (
            "/crm/v4/associations/{ot}/{tot}/labels",
            "/crm/associations/v4/{ot}/{tot}/labels",
        ):
            r.add_api_route(labels, self.labels, methods=["GET"])
            r.add_api_route(labels, self.create_label, methods=["POST"])
            r.add_api_route(labels, self.update_label, methods=["PUT"])
            r.add_api_route(labels + "/{type_id}", self.delete_label, methods=["DELETE"])
        return r

    # -- helpers ----------------------------------------------------------------------------
    def _pair(self, ot: str, oid: str, tot: str, tid: str) -> dict[str, Any]:
        """LabelsBetweenObjectPair: the labels now set from `oid` to `tid`."""
        found = dict(self.store.associations(ot, oid, tot)).get(tid, [])
        labels = [self.store.assoc_types.label(ot, tot, s) for s in found]
        return {
            "fromObjectTypeId": OBJECT_TYPE_IDS[ot],
            "fromObjectId": oid,
            "toObjectTypeId": OBJECT_TYPE_IDS[tot],
            "toObjectId": tid,
            "labels": [label for label in labels if label],
        }

    def _targets(self, ot: str, oid: str, tot: str) -> list[dict[str, Any]]:
        """MultiAssociatedObjectWithLabel for each live record `oid` is associated with."""
        types = self.store.assoc_types
        return [
            {
                "toObjectId": tid,
                "associationTypes": [
                    {"category": c, "typeId": t, "label": types.label(ot, tot, (c, t))}
                    for c, t in specs
                ],
            }
            for tid, specs in self.store.associations(ot, oid, tot)
        ]

    def _exists(self, ot: str, rid: str) -> bool:
        try:
            self.store.get(ot, rid)
        except HsError as exc:
            if exc.status != 404:
                raise
            return False
        return True

    # -- one pair ---------------------------------------------------------------------------
    async def associate(self, ot: str, oid: str, tot: str, tid: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        specs = specs_of(await json_body(request))
        self.store.associate(ot, oid, tot, tid, specs)
        return JSONResponse(self._pair(ot, oid, tot, tid), 201)

    async def associate_default(self, ot: str, oid: str, tot: str, tid: str) -> Response:
        ot, tot, started = object_type(ot), object_type(tot), now_iso()
        type_id = self.store.associate_default(ot, oid, tot, tid)
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
        result = {"from": {"id": oid}, "to": {"id": tid}, "associationSpec": spec}
        return batch_response([result], [], started, 200)

    async def remove(self, ot: str, oid: str, tot: str, tid: str) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        self.store.unassociate(ot, oid, tot, tid)
        return Response(status_code=204)

    async def page(self, ot: str, oid: str, tot: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        self.store.get(ot, oid)
        limit = query_int(request, "limit", PAGE_LIMIT, PAGE_LIMIT)
        after = query_after(request)
        found = self._targets(ot, oid, tot)
        if after is not None:
            found = [t for t in found if int(t["toObjectId"]) >= after]
        body: dict[str, Any] = {"results": found[:limit]}
        if len(found) > limit:
            nxt = found[limit]["toObjectId"]
            link = str(request.url.include_query_params(after=nxt))
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONResponse(body)

    # -- batches ----------------------------------------------------------------------------
    async def batch_create(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot, started = object_type(ot), object_type(tot), now_iso()
        _, inputs = await batch_inputs(request)
        parsed = [
            (ref_id(i.get("from"), "from"), ref_id(i.get("to"), "to"), specs_of(i.get("types")))
            for i in inputs
        ]
        for _, _, specs in parsed:  # one invented type fails the whole batch, as in HubSpot
            self.store.assoc_types.check(ot, tot, specs)
        results, missing = [], []
        with self.store.lock:
            for from_id, to_id, specs in parsed:
                if not (self._exists(ot, from_id) and self._exists(tot, to_id)):
                    missing.append(f"{from_id}->{to_id}")
                    continue
                self.store.associate(ot, from_id, tot, to_id, specs)
                results.append(self._pair(ot, from_id, tot, to_id))
        errors = [_missing_pairs(missing)] if missing else []
        return batch_response(results, errors, started, 201)

    async def batch_read(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot, started = object_type(ot), object_type(tot), now_iso()
        _, inputs = await batch_inputs(request)
        results, missing = [], []
        for item in inputs:
            rid = str(item.get("id") or "")
            after = cursor(item.get("after"))
            if not rid or not self._exists(ot, rid):
                missing.append(rid)
                continue
            found = self._targets(ot, rid, tot)
            if after is not None:
                found = [t for t in found if int(t["toObjectId"]) >= after]
            results.append({"from": {"id": rid}, "to": found})
        errors = []
        if missing:
            message = f"No {ot} objects with ids {', '.join(missing)}"
            errors = [batch_error("OBJECT_NOT_FOUND", message, missing)]
        return batch_response(results, errors, started, 200)

    async def batch_archive(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        _, inputs = await batch_inputs(request)
        pairs = []
        for item in inputs:
            targets = item.get("to")
            if not isinstance(targets, list):
                raise validation("to must be a list of {id} objects")
            from_id = ref_id(item.get("from"), "from")
            pairs += [(from_id, ref_id(t, "to[]")) for t in targets]
        with self.store.lock:
            for from_id, to_id in pairs:
                self.store.unassociate(ot, from_id, tot, to_id)
        return Response(status_code=204)

    async def batch_archive_labels(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        _, inputs = await batch_inputs(request)
        parsed = [
            (ref_id(i.get("from"), "from"), ref_id(i.get("to"), "to"), specs_of(i.get("types")))
            for i in inputs
        ]
        with self.store.lock:
            for from_id, to_id, specs in parsed:
                self.store.assoc_types.check(ot, tot, specs)
                self.store.unassociate(ot, from_id, tot, to_id, specs)
        return Response(status_code=204)

    async def batch_default(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot, started = object_type(ot), object_type(tot), now_iso()
        _, inputs = await batch_inputs(request)
        pairs = [(ref_id(i.get("from"), "from"), ref_id(i.get("to"), "to")) for i in inputs]
        results, missing = [], []
        with self.store.lock:
            for from_id, to_id in pairs:
                if not (self._exists(ot, from_id) and self._exists(tot, to_id)):
                    missing.append(f"{from_id}->{to_id}")
                    continue
                type_id = self.store.associate_default(ot, from_id, tot, to_id)
                spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
                results.append(
                    {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": spec}
                )
        errors = [_missing_pairs(missing)] if missing else []
        return batch_response(results, errors, started, 200)

    # -- labels -----------------------------------------------------------------------------
    def _label_json(self, ot: str, tot: str, c: str, t: int, label: str | None) -> dict[str, Any]:
        return {
            "category": c,
            "typeId": t,
            "label": label,
            "fromObjectTypeId": OBJECT_TYPE_IDS[ot],
            "toObjectTypeId": OBJECT_TYPE_IDS[tot],
        }

    async def labels(self, ot: str, tot: str) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        specs = self.store.assoc_types.specs(ot, tot)
        return JSONResponse({"results": [self._label_json(ot, tot, *s) for s in specs]})

    async def create_label(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        body = await object_body(request, "a label definition")
        label, name, inverse = body.get("label"), body.get("name"), body.get("inverseLabel")
        if not isinstance(label, str) or not label.strip() or not isinstance(name, str) or not name:
            raise validation("label and name are required text")
        if inverse is not None and not isinstance(inverse, str):
            raise validation("inverseLabel must be text")
        made = self.store.assoc_types.create_label(ot, tot, label, name, inverse)
        directions = [(ot, tot), (tot, ot)]
        results = [self._label_json(f, t, *s) for (f, t), s in zip(directions, made, strict=True)]
        return JSONResponse({"results": results})

    async def update_label(self, ot: str, tot: str, request: Request) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        body = await object_body(request, "a label update")
        type_id, label = body.get("associationTypeId"), body.get("label")
        if not isinstance(type_id, int) or not isinstance(label, str) or not label.strip():
            raise validation("associationTypeId (integer) and label (text) are required")
        inverse = body.get("inverseLabel")
        self.store.assoc_types.update_label(
            ot, tot, type_id, label, inverse if isinstance(inverse, str) else None
        )
        return Response(status_code=204)

    async def delete_label(self, ot: str, tot: str, type_id: str) -> Response:
        ot, tot = object_type(ot), object_type(tot)
        number = cursor(type_id, "associationTypeId")
        if number is None:
            raise validation("associationTypeId is required")
        with self.store.lock:
            back = self.store.assoc_types.delete_label(ot, tot, number)
            self.store.drop_type(ot, tot, ("USER_DEFINED", number), back)
        return Response(status_code=204)


def _missing_pairs(pairs: list[str]) -> dict[str, Any]:
    return batch_error(
        "OBJECT_NOT_FOUND", f"Some objects to associate do not exist: {', '.join(pairs)}", pairs
    )
