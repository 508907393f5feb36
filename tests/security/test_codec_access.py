"""The codec server against an attacker: a foreign web page (Origin) gets no CORS grant
and no plaintext, `/encode` needs the token like `/decode`, and production refuses to
start without one."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from worker.codec import EncryptionCodec
from worker.processes.codec_server import create_codec_app, run_codec_server
from worker.settings import Settings

UI = "http://127.0.0.1:8233"
EVIL = "http://evil.example"
KEY = {"k1": b"k" * 32}


def client(token: str | None = None) -> httpx.AsyncClient:
    app = create_codec_app(
        EncryptionCodec(KEY), cors_origins=[UI], auth_token=SecretStr(token) if token else None
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec")


def plain() -> dict[str, Any]:
    payloads = pydantic_data_converter.payload_converter.to_payloads([{"deal": "Acme"}])
    return json_format.MessageToDict(Payloads(payloads=payloads))


async def sealed() -> dict[str, Any]:
    async with client() as http:
        result: dict[str, Any] = (await http.post("/encode", json=plain())).json()
    return result


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_a_foreign_origin_gets_no_grant_and_no_plaintext(token: str | None) -> None:
    """A page on another site posting to /decode: 403, no CORS header, no deal data."""
    headers = {"Origin": EVIL}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with client(token) as http:
        response = await http.post("/decode", json=await sealed(), headers=headers)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert (
        "Acme" not in response.text and base64.b64encode(b"Acme").decode()[:6] not in response.text
    )


async def test_the_ui_origin_with_the_token_decodes() -> None:
    """The listed origin with the token gets the plaintext and the CORS grant."""
    async with client("s3cret") as http:
        response = await http.post(
            "/decode",
            json=await sealed(),
            headers={"Origin": UI, "Authorization": "Bearer s3cret"},
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI
    assert response.json() == plain()


@pytest.mark.parametrize("path", ["/encode", "/decode"])
async def test_no_token_is_a_401_on_encode_and_decode(path: str) -> None:
    """Both endpoints need the token: an attacker can neither read nor forge payloads."""
    async with client("s3cret") as http:
        missing = await http.post(path, json=plain(), headers={"Origin": UI})
        wrong = await http.post(path, json=plain(), headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "data" not in missing.json() and "payloads" not in missing.json()


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        state_dir=tmp_path,
        environment="production",
        encryption_keys={"k1": SecretStr(base64.b64encode(b"k" * 32).decode())},
        **values,
    )


def test_production_refuses_to_start_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No HANDOFF_CODEC_TOKEN in production: a one-line refusal, nothing listens."""
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: served.append(a))
    with pytest.raises(SystemExit) as stopped:
        run_codec_server(settings(tmp_path))
    assert "HANDOFF_CODEC_TOKEN is required in production" in str(stopped.value.code)
    assert served == []
    run_codec_server(settings(tmp_path, codec_token=SecretStr("s3cret")))
    assert len(served) == 1
