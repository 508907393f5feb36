"""Property-based check of every HTTP route of the API process: random paths (from the
app's own route templates, filled with hostile segments, or made up), methods, query
strings, bodies and headers, with and without valid credentials. No answer is a 500 (or
any 5xx), and no answer repeats what the body carried.

The app runs in-process against the real dev server, with the webhook ingress, signed
links and the trusted user header (from a listed proxy) all switched on, so requests
with a valid token or a proxy's header reach Temporal. Hypothesis is derandomized, so
CI sees the same examples every run.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from support.api import BASE, TOKENS, make_settings
from temporalio.testing import WorkflowEnvironment

from worker.http.auth import SESSION_COOKIE
from worker.http.ingress.temporal_starter import ingress_routers
from worker.processes.api import create_app

pytestmark = pytest.mark.integration

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: In every free-text value the body carries: an answer holding it echoed the input.
MARKER = "qzx7echo"
USER_HEADER = "X-Forwarded-Email"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: What each path parameter is filled with: mostly values the app accepts, so requests
#: get past routing and validation to authentication, scopes and Temporal.
PARAMS: dict[str, list[str]] = {
    "crm": ["hubspot", "salesforce", "memory"],
    "handoff_type": ["lead-to-cash", "renewal"],
    "deal_id": ["1001", "006000000000001AAA", "0060000000000011", "D-1"],
    "token": ["hl1.e30.AAAA", "hl1.nonsense"],
}
#: Path segments meant to hurt: traversal, reserved suffixes, oversize, controls.
HOSTILE = [
    "..", "../../etc/passwd", "D-1-approval-r1", "%2e%2e", "%00", "a" * 300, "", " ", "'",
    "\u202e", "1001\n", "approve", "{deal_id}",
]  # fmt: skip
FIELDS = [
    "reason", "approver", "kind", "by", "note", "team", "discount_percent", "amount",
    "decision", "csrf", "token", "action", "question", "answer", "delegate", "fields",
    "ref", "events", "email", "role", "until", "stage", "lines",
]  # fmt: skip
CONTENT_TYPES = [
    "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
    "multipart/form-data", "text/plain", "application/json; charset=latin-1", "*/*", "x/y;;=",
]  # fmt: skip

texts = st.text(max_size=30)
#: Free text that carries the marker, so an echo of it can be seen.
marked = st.builds(lambda a, b: f"{a}{MARKER}{b}", texts, texts)
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | marked,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """No body, JSON, a form, multipart, or bytes; every free-text value is marked."""
    kind = draw(st.sampled_from(["none", "json", "form", "multipart", "bytes"]))
    if kind == "none":
        return b""
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    fields = draw(st.dictionaries(st.sampled_from(FIELDS), marked, max_size=5))
    if kind == "form":
        return urlencode(fields).encode()
    if kind == "multipart":
        parts = [
            f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        ]
        return ("".join(parts) + "--b--\r\n").encode()
    return draw(st.binary(max_size=200)) + MARKER.encode() + draw(st.binary(max_size=200))


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    found: dict[str, str] = {}
    auth = draw(
        st.sampled_from(["none", "valid", "valid", "valid", "bearer", "other", "cookie", "proxy"])
    )
    if auth == "valid":
        found["Authorization"] = f"Bearer {draw(st.sampled_from(sorted(TOKENS.values())))}"
    elif auth == "bearer":
        found["Authorization"] = f"Bearer {draw(header_text)}"
    elif auth == "other":
        found["Authorization"] = draw(header_text)
    elif auth == "cookie":
        token = draw(st.sampled_from(sorted(TOKENS.values())) | header_text)
        found["Cookie"] = f"{SESSION_COOKIE}={quote(token)}"
    elif auth == "proxy":  # the trusted proxy's header: any person, or any text at all
        found[USER_HEADER] = draw(st.sampled_from(sorted(TOKENS)) | header_text)
    if draw(st.booleans()):
        found["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES) | header_text)
    for name in ("X-Forwarded-For", "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"):
        if draw(st.booleans()):
            found[name] = draw(header_text)
    extra = draw(st.dictionaries(st.from_regex(r"\AX-[A-Za-z]{1,12}\Z"), header_text, max_size=2))
    return {**extra, **found}


@st.composite
def requests(draw: st.DrawFn, routes: dict[str, set[str]]) -> tuple[str, str]:
    """(method, path): a route with its `{param}`s filled and, mostly, a method it
    serves; or a made-up path."""
    if draw(st.integers(0, 5)) == 0:
        parts = draw(st.lists(st.sampled_from(HOSTILE) | texts, min_size=1, max_size=5))
        method = draw(st.sampled_from(METHODS))
    else:
        template = draw(st.sampled_from(sorted(routes)))
        served = sorted(routes[template])
        usual = served and draw(st.integers(0, 4))  # now and then, a method it does not serve
        method = draw(st.sampled_from(served if usual else METHODS))
        parts = []
        for part in template.strip("/").split("/"):
            if param := re.fullmatch(r"\{(\w+)(:\w+)?\}", part):
                known = st.sampled_from(PARAMS.get(param[1], ["x"]))
                part = draw(known if draw(st.integers(0, 3)) else st.sampled_from(HOSTILE) | texts)
            parts.append(part)
    # as typed (`%2e%2e` and `/` kept; only what no URL may hold escaped), or all escaped
    safe = "/%:@!$&'()*+,;=~" if draw(st.booleans()) else ""
    return method, "/" + "/".join(quote(p, safe=safe) for p in parts)


@pytest.fixture(scope="module")
def app(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The API process's app as `handoff api` builds it, webhooks included."""
    values: dict[str, Any] = {
        "crm": "hubspot",
        "hubspot_app_secret": SecretStr("hubspot-app-secret-for-tests"),
        "trusted_user_header": USER_HEADER,
        "trusted_proxies": ["127.0.0.1"],
        "task_queue": "http-properties",  # no worker: nothing started here ever runs
    }
    settings_ = make_settings(Path(tmp_path_factory.mktemp("api")), **values)
    routers = ingress_routers(settings_, dev_env.client)
    assert routers, "the webhook ingress is part of what is checked"
    return create_app(settings_, dev_env.client, extra_routers=routers)


@pytest.fixture(scope="module")
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as client:
        yield client


def routes_of(routes: list[Any], prefix: str = "") -> dict[str, set[str]]:
    """Every route's path template and methods, through FastAPI's included routers."""
    found: dict[str, set[str]] = {}
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            for path, methods in routes_of(
                included.routes, prefix + route.include_context.prefix
            ).items():
                found.setdefault(path, set()).update(methods)
        elif (path := getattr(route, "path", "")) and path != "/static":
            found.setdefault(prefix + path, set()).update(getattr(route, "methods", None) or ())
    return found


@pytest.fixture(scope="module")
def routes(app: FastAPI) -> dict[str, set[str]]:
    found = routes_of(app.routes)
    assert {"/webhooks/hubspot", "/links/{token}", "/api/approvals", "/inbox"} <= set(found)
    return found


@EXAMPLES
@given(data=st.data())
async def test_no_request_yields_a_500_or_an_echo_of_its_body(
    http: httpx.AsyncClient, routes: dict[str, set[str]], data: st.DataObject
) -> None:
    """Any method, path, query, body and headers: a 4xx or a 2xx/3xx, never a 5xx, and
    never the body (or any free text in it) repeated in the answer."""
    method, path = data.draw(requests(routes), label="request")
    query = data.draw(st.dictionaries(st.sampled_from(FIELDS) | texts, texts, max_size=3))
    body = data.draw(bodies(), label="body")
    sent = data.draw(headers(), label="headers")
    r = await http.request(method, path, params=query, content=body, headers=sent)
    event(f"{r.status_code}")  # `--hypothesis-show-statistics` shows how far requests got
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert MARKER.encode() not in r.content, r.text[:300]
    assert MARKER not in str(r.headers)
    if len(body) >= 32:
        assert body not in r.content
