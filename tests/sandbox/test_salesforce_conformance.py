"""The Salesforce sandbox answers as the REST API Developer Guide and SOQL reference document.

Each expectation comes from a documented request/response example kept under
``tests/sandbox/specs/salesforce/`` (every file names its source page), driven through the
real simple-salesforce client or ``requests`` with the same trusted TLS session.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from starlette.requests import Request

from connectors.salesforce import LoginHostAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from salesforce_fixtures import API, TOKEN, Sandbox, running_sandbox

SPECS = Path(__file__).parent / "specs" / "salesforce"


def spec(name: str) -> Any:
    return json.loads((SPECS / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sf-conformance")) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: Sandbox) -> Iterator[Sandbox]:
    yield server
    server.reset()


@pytest.fixture
def sf(server: Sandbox) -> Iterator[Salesforce]:
    session = requests.Session()
    session.verify, session.trust_env = str(server.ca_pem), False
    session.mount("https://", LoginHostAdapter(server.host, 10))
    yield Salesforce(session=session, session_id=TOKEN, instance_url=server.base)
    session.close()


def assert_error_list(response: requests.Response, status: int, code: str) -> None:
    """The documented error body: a JSON list of {message, errorCode}, with the status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and body, body
    for item in body:
        assert set(spec("errors")["error_item_keys"]) <= set(item)
    assert body[0]["errorCode"] == code, body


# -- what the sandbox does not serve ------------------------------------------------------
@pytest.mark.parametrize(
    "case", spec("errors")["unserved"], ids=lambda c: f"{c['method']} {c['path']}"
)
def test_unserved_paths_and_methods_answer_the_salesforce_error_list(
    sandbox: Sandbox, case: dict[str, Any]
) -> None:
    """A path or method the sandbox does not serve gets NOT_FOUND/METHOD_NOT_ALLOWED lists."""
    response = sandbox.rest(case["method"], case["path"])
    assert_error_list(response, case["status"], case["errorCode"])
    if case["status"] == 405:
        assert response.headers.get("Allow")


@pytest.mark.parametrize(
    "case", spec("errors")["bad_bodies"], ids=lambda c: f"{c['path']} {c['body']}"
)
def test_malformed_bodies_are_json_parser_errors(sandbox: Sandbox, case: dict[str, Any]) -> None:
    """A body that is not the JSON the resource takes is a 400 JSON_PARSER_ERROR list."""
    response = sandbox.rest(
        case["method"],
        case["path"],
        data=case["body"].encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_error_list(response, case["status"], case["errorCode"])


def test_control_endpoint_validation_errors_use_the_error_list(sandbox: Sandbox) -> None:
    """Even the sandbox's own controls answer bad input with a 400 error list, not FastAPI's."""
    response = sandbox.http.post(f"{sandbox.base}/_sandbox/faults", json={"latency_ms": -1})
    assert_error_list(response, 400, "JSON_PARSER_ERROR")
    assert "latency_ms" in response.json()[0]["message"]


def test_an_unexpected_exception_is_unknown_exception_and_keeps_the_connection(
    sandbox: Sandbox,
) -> None:
    """A bug in a handler answers 500 UNKNOWN_EXCEPTION as a list; the next call still works."""
    app = sandbox.app

    async def broken(_: Request) -> None:
        raise KeyError("boom")

    app.add_api_route("/services/data/v59.0/_broken", broken, methods=["GET"])
    assert_error_list(sandbox.rest("GET", f"{API}/_broken"), 500, "UNKNOWN_EXCEPTION")
    assert sandbox.rest("GET", f"{API}/limits/").status_code == 200


def test_invalid_session_is_401_invalid_session_id(sandbox: Sandbox) -> None:
    """A wrong bearer token is 401 INVALID_SESSION_ID as a list (simple-salesforce needs [0])."""
    response = sandbox.http.get(
        f"{sandbox.base}{API}/sobjects/Account/describe",
        headers={"Authorization": "Bearer wrong"},
    )
    assert_error_list(response, 401, "INVALID_SESSION_ID")
