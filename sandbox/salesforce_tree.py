"""``POST .../composite/tree/{object}``: a tree of records, created in one transaction.

Each record carries ``attributes: {type, referenceId}``; children sit under a child
relationship name as ``{"records": [...]}`` and get their parent's id. At most 200 records
and 5 levels. Success is 201 ``{"hasErrors": false, "results": [{referenceId, id}]}``; any
failure rolls the whole tree back and answers 400 with the failing records' errors.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.salesforce_errors import SfError
from sandbox.salesforce_rest import DataApi, object_def, read_json
from sandbox.salesforce_schema import child_relationships

MAX_RECORDS = 200
MAX_DEPTH = 5


class _Failed(Exception):
    """Roll the tree back once a record failed."""

    def __init__(self, reference: str, exc: SfError) -> None:
        super().__init__(exc.message)
        self.reference, self.exc = reference, exc


class Tree:
    """The sObject Tree resource over `DataApi`'s store."""

    def __init__(self, data: DataApi) -> None:
        self.data = data

    async def handle(self, request: Request) -> Response:
        state = self.data.state
        user = state.auth.authenticate(request)
        request.state.template = "composite/tree/{object}"
        root = object_def(request.path_params["object"])
        body = await read_json(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise SfError(400, "JSON_PARSER_ERROR", "records must be a non-empty list")
        if _count(records) > MAX_RECORDS:
            raise SfError(400, "LIMIT_EXCEEDED", f"at most {MAX_RECORDS} records in a tree")
        results: list[dict[str, Any]] = []
        try:
            with state.store.transaction():
                for record in records:
                    self._create(root.name, record, None, results, user, depth=1)
        except _Failed as failed:
            error = {
                "statusCode": failed.exc.code,
                "message": failed.exc.message,
                "fields": failed.exc.fields,
            }
            body = {
                "hasErrors": True,
                "results": [{"referenceId": failed.reference, "errors": [error]}],
            }
            return JSONResponse(body, status_code=400)
        return JSONResponse({"hasErrors": False, "results": results}, status_code=201)

    def _create(
        self,
        obj: str,
        record: Any,
        parent: tuple[str, str] | None,
        results: list[dict[str, Any]],
        user: str,
        *,
        depth: int,
    ) -> None:
        attrs = record.get("attributes") if isinstance(record, dict) else None
        reference = str(attrs.get("referenceId", "")) if isinstance(attrs, dict) else ""
        try:
            if not isinstance(attrs, dict) or not reference:
                raise SfError(400, "INVALID_INPUT", "every record needs attributes.referenceId")
            if str(attrs.get("type", "")).lower() != obj.lower():
                raise SfError(400, "INVALID_TYPE", f"the record's type must be {obj}")
            if any(r["referenceId"] == reference for r in results):
                raise SfError(400, "INVALID_INPUT", f"duplicate referenceId {reference}")
            if depth > MAX_DEPTH:
                raise SfError(400, "INVALID_INPUT", f"a tree has at most {MAX_DEPTH} levels")
            assert isinstance(record, dict)
            if "Id" in record or "id" in record:
                raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call")
            children = {
                rel.lower(): (child, fdef.name) for rel, child, fdef in child_relationships(obj)
            }
            nested = {k: v for k, v in record.items() if k.lower() in children}
            data = {k: v for k, v in record.items() if k != "attributes" and k not in nested}
            if parent is not None:
                data[parent[0]] = parent[1]
            rid = self.data.state.store.create(obj, data, user)
        except SfError as exc:
            raise _Failed(reference, exc) from exc
        results.append({"referenceId": reference, "id": rid})
        for key, value in nested.items():
            child, fk = children[key.lower()]
            rows = value.get("records") if isinstance(value, dict) else None
            if not isinstance(rows, list):
                raise _Failed(reference, SfError(400, "INVALID_INPUT", f"{key} needs records"))
            for row in rows:
                self._create(child, row, (fk, rid), results, user, depth=depth + 1)


def _count(records: list[Any]) -> int:
    total = 0
    for record in records:
        total += 1
        if isinstance(record, dict):
            for value in record.values():
                if isinstance(value, dict) and isinstance(value.get("records"), list):
                    total += _count(value["records"])
    return total
