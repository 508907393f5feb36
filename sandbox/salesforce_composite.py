"""``POST /services/data/v{ver}/composite``: up to 25 subrequests in one API call.

Each subrequest runs through the same handlers as a direct call. ``@{ref.field}`` in a
later URL or body is replaced by that field of an earlier subrequest's response. With
``allOrNone`` a failure rolls every write back and the other subrequests answer
``PROCESSING_HALTED``. A subrequest's ``httpHeaders`` (such as ``If-Unmodified-Since``)
apply to it alone, as the composite resource documents.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.salesforce_errors import MultipleMatches, SfError
from sandbox.salesforce_query import QueryApi
from sandbox.salesforce_rest import DataApi, read_json

MAX_SUBREQUESTS = 25
BATCH_HALTED = [
    {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}
]
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\}")


class _Halt(Exception):
    """Stop an allOrNone composite request and undo its writes."""


class Composite:
    """The composite resource, dispatching subrequests to `DataApi`."""

    def __init__(self, data: DataApi) -> None:
        self.data = data

    async def handle(self, request: Request) -> Response:
        request.scope.setdefault("state", {})["composite_user"] = self.data.state.auth.authenticate(
            request
        )
        request.state.template = "composite"
        body = await read_json(request)
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            raise SfError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise SfError(400, "LIMIT_EXCEEDED", f"at most {MAX_SUBREQUESTS} subrequests")
        all_or_none = bool(body.get("allOrNone", False))
        request.state.read_only = all(
            isinstance(sub, dict) and str(sub.get("method", "")).upper() == "GET"
            for sub in subrequests
        )
        results: list[dict[str, Any]] = []
        bodies: dict[str, Any] = {}
        try:
            with self.data.state.store.transaction():
                for sub in subrequests:
                    status, payload = await self._run(request, sub, bodies)
                    ref = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
                    bodies[ref] = payload
                    results.append(
                        {
                            "body": payload,
                            "httpHeaders": self._headers(sub, status, payload),
                            "httpStatusCode": status,
                            "referenceId": ref,
                        }
                    )
                    if status >= 400 and all_or_none:
                        raise _Halt
        except _Halt:
            halted = [
                {
                    "errorCode": "PROCESSING_HALTED",
                    "message": "The transaction was rolled back since another operation"
                    " in the same transaction failed.",
                }
            ]
            for result in results[:-1]:
                result.update(body=halted, httpStatusCode=400)
            for sub in subrequests[len(results) :]:
                results.append(
                    {
                        "body": halted,
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": str(sub.get("referenceId", ""))
                        if isinstance(sub, dict)
                        else "",
                    }
                )
        return JSONResponse({"compositeResponse": results})

    def _headers(self, sub: Any, status: int, payload: Any) -> dict[str, str]:
        """A created record's ``Location``, as the composite resource documents."""
        if status != 201 or not isinstance(payload, dict) or "id" not in payload:
            return {}
        path = urlsplit(str(sub.get("url", ""))).path
        obj = path.split("/sobjects/", 1)[-1].split("/")[0]
        return {"Location": self.data.state.url(obj, str(payload["id"]))}

    async def _run(self, parent: Request, sub: Any, bodies: dict[str, Any]) -> tuple[int, Any]:
        if not isinstance(sub, dict) or "url" not in sub or "method" not in sub:
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad subrequest"}]
        try:
            url = _resolve(str(sub["url"]), bodies)
            body = json.loads(_resolve(json.dumps(sub.get("body")), bodies))
        except (KeyError, TypeError) as exc:
            message = f"Invalid reference specified: {exc}"
            return 400, [{"errorCode": "INVALID_REFERENCE", "message": message}]
        headers = sub.get("httpHeaders") or {}
        if not isinstance(headers, dict):
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad httpHeaders"}]
        return await self.dispatch(parent, str(sub["method"]), url, body, headers)

    async def dispatch(
        self,
        parent: Request,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """Run one subrequest through the direct handlers: (status, parsed body)."""
        parts = urlsplit(url)
        raw = json.dumps(body).encode() if body is not None else b""
        own = [(str(k).lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "method": method.upper(),
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "headers": [(b"authorization", parent.headers.get("authorization", "").encode())]
            + [(k, v) for k, v in own if k != b"authorization"],
            "path_params": {},
            "state": {"composite_user": parent.scope.get("state", {}).get("composite_user")},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        sub_request = Request(scope, receive)
        prefix = f"/services/data/v{self.data.state.api_version}"
        try:
            if parts.path.startswith(f"{prefix}/sobjects"):
                response = await self.data.sobjects(sub_request)
            elif parts.path.rstrip("/") in (f"{prefix}/query", f"{prefix}/queryAll"):
                response = await QueryApi(self.data.state).query(sub_request)
            else:
                raise SfError(404, "NOT_FOUND", f"unsupported subrequest {url}")
        except MultipleMatches as exc:
            return 300, [self.data.state.url(exc.obj, rid) for rid in exc.ids]
        except SfError as exc:
            return exc.status, exc.body()
        finally:
            self._count(sub_request, method)
        payload = json.loads(bytes(response.body)) if response.body else None
        return response.status_code, payload

    def _count(self, sub: Request, method: str) -> None:
        """One subrequest by route, with its sObject named: ``PATCH
        /services/data/v{ver}/sobjects/Task/{field}/{value}``."""
        template = getattr(sub.state, "template", None) or "(unrouted)"
        sobject = getattr(sub.state, "sobject", None)
        if sobject:
            template = template.replace("{object}", sobject)
        state = self.data.state
        with state.mutex:
            state.subrequests[f"{method.upper()} /services/data/v{{ver}}/{template}"] += 1

    # -- composite batch -----------------------------------------------------------------
    async def batch(self, request: Request) -> Response:
        """``POST .../composite/batch``: independent subrequests, each one API call."""
        self.data.state.auth.authenticate(request)
        request.state.template = "composite/batch"
        body = await read_json(request)
        subs = body.get("batchRequests") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            raise SfError(400, "JSON_PARSER_ERROR", "batchRequests must be a non-empty list")
        if len(subs) > MAX_SUBREQUESTS:
            raise SfError(400, "LIMIT_EXCEEDED", f"at most {MAX_SUBREQUESTS} subrequests")
        halt_on_error = bool(body.get("haltOnError", False))
        with self.data.state.mutex:
            self.data.state.used += len(subs) - 1  # the batch itself was counted once
            self.data.state.calls += len(subs) - 1
        results: list[dict[str, Any]] = []
        halted = False
        for sub in subs:
            if halted:
                results.append({"statusCode": 412, "result": BATCH_HALTED})
                continue
            status, payload = await self._batch_one(request, sub)
            results.append({"statusCode": status, "result": payload})
            halted = halt_on_error and status >= 400
        has_errors = any(r["statusCode"] >= 400 for r in results)
        return JSONResponse({"hasErrors": has_errors, "results": results})

    async def _batch_one(self, request: Request, sub: Any) -> tuple[int, Any]:
        if not isinstance(sub, dict) or "url" not in sub or "method" not in sub:
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad batch subrequest"}]
        url = str(sub["url"])
        if not url.startswith("/"):
            url = f"/services/data/{url}"  # documented form: "v59.0/sobjects/..."
        return await self.dispatch(request, str(sub["method"]), url, sub.get("richInput"))


def _resolve(text: str, bodies: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        ref, field = match.groups()
        return str(bodies[ref][field])

    return REFERENCE.sub(value, text)
