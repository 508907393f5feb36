"""The codec server the Temporal UI calls: protocol, CORS and bearer auth, over HTTP."""

from __future__ import annotations

import httpx
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from worker.codec import EncryptionCodec
from worker.processes.codec_server import create_codec_app

UI = "http://localhost:8233"


def client(token: str | None = None) -> httpx.AsyncClient:
    app = create_codec_app(
        EncryptionCodec({"k1": b"k" * 32}),
        cors_origins=[UI],
        auth_token=SecretStr(token) if token else None,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec")


def body() -> dict[str, object]:
    payloads = pydantic_data_converter.payload_converter.to_payloads([{"deal": "Acme"}])
    return json_format.MessageToDict(Payloads(payloads=payloads))


async def test_encode_then_decode_round_trips_over_http() -> None:
    """/encode hides the payload, /decode gives back the original JSON form."""
    async with client() as http:
        sealed = (await http.post("/encode", json=body())).json()
        assert "QWNtZQ" not in str(sealed)  # base64 of "Acme" is gone
        opened = (await http.post("/decode", json=sealed)).json()
    assert opened == body()


async def test_preflight_allows_the_ui_origin_and_namespace_header() -> None:
    """The UI's CORS preflight with X-Namespace succeeds for its origin only."""
    headers = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    async with client() as http:
        ok = await http.options("/decode", headers=headers)
        other = await http.options("/decode", headers={**headers, "Origin": "http://evil.example"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == UI
    assert "x-namespace" in ok.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400


async def test_a_configured_token_is_required() -> None:
    """Without the bearer token the server refuses; with it, it decodes."""
    async with client("s3cret") as http:
        refused = await http.post("/decode", json=body())
        wrong = await http.post("/decode", json=body(), headers={"Authorization": "Bearer no"})
        ok = await http.post("/decode", json=body(), headers={"Authorization": "Bearer s3cret"})
    assert (refused.status_code, wrong.status_code, ok.status_code) == (401, 401, 200)


async def test_garbage_is_a_400_with_a_reason() -> None:
    """A body that is not the Payloads JSON form is refused, not a crash."""
    async with client() as http:
        response = await http.post("/decode", content=b"{not json")
    assert response.status_code == 400
    assert "Payloads" in response.json()["detail"]
