"""SOQL over REST: ``query`` and ``queryAll`` (which also sees the recycle bin), and paging.

A result is cut into pages of 2,000 records (``Sforce-Query-Options: batchSize=`` between
200 and 2,000); ``nextRecordsUrl`` is an absolute path, as simple-salesforce needs.
Relationship paths and child subqueries read the store through `StoreLookup`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.salesforce_errors import SfError
from sandbox.salesforce_schema import OBJECTS, child_relationships
from sandbox.salesforce_soql import Entity, SoqlError, parse, run
from sandbox.salesforce_soql_eval import Record
from sandbox.salesforce_sosl import parse_search, search
from sandbox.salesforce_store import Store

if TYPE_CHECKING:
    from sandbox.salesforce_rest import SandboxState


def soql_schema() -> dict[str, Entity]:
    """The org's objects as the SOQL parser sees them, relationships included."""
    out: dict[str, Entity] = {}
    for name, odef in OBJECTS.items():
        parents = {
            f.relationship_name.lower(): (f.relationship_name, f.name, f.reference_to)
            for f in odef.fields
            if f.relationship_name
        }
        children = {
            rel.lower(): (rel, child, fdef.name) for rel, child, fdef in child_relationships(name)
        }
        out[name] = Entity(name, {f.name: f.type for f in odef.fields}, parents, children)
    return out


SCHEMA = soql_schema()


class StoreLookup:
    """Relationship reads for one query; the recycle bin is visible only to queryAll."""

    def __init__(self, store: Store, include_deleted: bool) -> None:
        self.store, self.include_deleted = store, include_deleted

    def record(self, record_id: str) -> tuple[str, Record] | None:
        found = self.store.raw(record_id)
        if found is None or (found[1].get("IsDeleted") and not self.include_deleted):
            return None
        return found

    def children(self, obj: str, field: str, parent_id: str) -> list[Record]:
        rows = self.store.records(obj, include_deleted=self.include_deleted)
        return [r for r in rows if r.get(field) == parent_id]


class QueryApi:
    """``GET .../query/?q=``, ``.../queryAll/?q=`` and ``.../query/{locator}``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def query(self, request: Request) -> Response:
        state = self.state
        state.auth.authenticate(request)
        locator = request.path_params.get("locator")
        request.state.template = "query/{locator}" if locator else "query"
        if locator:
            return JSONResponse(self._page(locator))
        include_deleted = request.url.path.rstrip("/").endswith("/queryAll")
        if include_deleted:
            request.state.template = "queryAll"
        text = request.query_params.get("q")
        if not text:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = parse(text, SCHEMA)
            records = state.store.records(query.object, include_deleted=include_deleted)
            lookup = StoreLookup(state.store, include_deleted)
            if query.count_only:
                total = len(run(query, records, lookup, state.url))
                return JSONResponse({"totalSize": total, "done": True, "records": []})
            rows = run(query, records, lookup, state.url)
        except SoqlError as exc:
            raise SfError(400, exc.error_code, exc.message) from exc
        if query.aggregated and len(rows) > 2000:
            raise SfError(400, "MALFORMED_QUERY", "Aggregate query does not support queryMore()")
        size = _batch_size(request.headers.get("sforce-query-options", ""))
        key = f"01gHd{secrets.token_hex(5)}"
        with state.mutex:
            state.cursors[key] = (rows, size)
            while len(state.cursors) > 64:
                state.cursors.popitem(last=False)
        return JSONResponse(self._page(f"{key}-0"))

    async def search(self, request: Request) -> Response:
        """``GET .../search/?q=``: a SOSL search, answered as ``{"searchRecords": [...]}``."""
        state = self.state
        state.auth.authenticate(request)
        request.state.template = "search"
        text = request.query_params.get("q")
        if not text:
            raise SfError(400, "MALFORMED_SEARCH", "A search string has to be specified")
        try:
            found = search(
                parse_search(text),
                SCHEMA,
                state.store.records,
                StoreLookup(state.store, include_deleted=False),
                state.url,
            )
        except SoqlError as exc:
            code = "MALFORMED_SEARCH" if exc.error_code == "MALFORMED_QUERY" else exc.error_code
            raise SfError(400, code, exc.message) from exc
        return JSONResponse({"searchRecords": found})

    def _page(self, locator: str) -> dict[str, object]:
        key, _, offset_text = locator.rpartition("-")
        with self.state.mutex:
            cursor = self.state.cursors.get(key)
        if cursor is None or not offset_text.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        records, size = cursor
        offset = int(offset_text)
        page = records[offset : offset + size]
        body: dict[str, Any] = {"totalSize": len(records), "done": True, "records": page}
        if offset + size < len(records):
            body["done"] = False
            path = f"/services/data/v{self.state.api_version}/query/{key}-{offset + size}"
            body["nextRecordsUrl"] = path
        return body


def _batch_size(header: str) -> int:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "batchsize" and value.strip().isdigit():
            return max(200, min(2000, int(value)))
    return 2000
