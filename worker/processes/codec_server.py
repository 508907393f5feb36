"""A codec server for the Temporal Web UI and CLI (`--codec-endpoint`).

The UI posts encrypted payloads to `/decode` and shows the plaintext in the browser;
the server never stores anything. It implements Temporal's codec-server protocol:
`{"payloads": [{"metadata": {k: base64}, "data": base64}]}` in and out. Because the
decrypted payloads are deal data, put it behind the same network boundary as the UI
and set `HANDOFF_CODEC_TOKEN` (the UI sends it as a bearer token).

In production the server refuses to start without that token, and with one both
`/encode` and `/decode` require it. Only the listed origins get a CORS grant, and a
request that names any other `Origin` is refused before anything is decoded (CORS
alone only stops a browser from reading the answer, not the server from giving it).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from worker.settings import Settings


def create_codec_app(
    codec: PayloadCodec, *, cors_origins: list[str], auth_token: SecretStr | None = None
) -> FastAPI:
    """`POST /encode` and `POST /decode`, with CORS for the UI's origin."""
    app = FastAPI(title="Handoff codec server", docs_url=None, redoc_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins,
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
        allow_credentials=True,
    )

    def authorise(request: Request) -> None:
        if auth_token is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), auth_token.get_secret_value().encode()):
            raise HTTPException(status_code=401, detail="a valid bearer token is required")

    async def convert(request: Request, decode: bool) -> dict[str, Any]:
        origin = request.headers.get("origin")
        if origin is not None and origin not in cors_origins:
            raise HTTPException(status_code=403, detail="this origin may not use the codec")
        authorise(request)
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as exc:
            raise HTTPException(status_code=400, detail=f"not a Payloads JSON: {exc}") from None
        try:
            if decode:
                converted = await codec.decode(payloads.payloads)
            else:
                converted = await codec.encode(payloads.payloads)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        result: dict[str, Any] = json_format.MessageToDict(Payloads(payloads=converted))
        return result

    @app.post("/encode")
    async def encode(request: Request) -> dict[str, Any]:
        return await convert(request, decode=False)

    @app.post("/decode")
    async def decode(request: Request) -> dict[str, Any]:
        return await convert(request, decode=True)

    return app


def run_codec_server(settings: Settings, *, port: int = 8888) -> None:
    """Serve the codec for the configured keys until stopped (production: token required)."""
    import uvicorn

    if settings.environment == "production" and settings.codec_token is None:
        raise SystemExit(
            "handoff codec-server: HANDOFF_CODEC_TOKEN is required in production "
            "(the codec decrypts deal data for whoever calls it); refusing to start."
        )

    from worker.codec import EncryptionCodec

    app = create_codec_app(
        EncryptionCodec.from_settings(settings),
        cors_origins=settings.codec_cors_origins,
        auth_token=settings.codec_token,
    )
    uvicorn.run(app, host=settings.api_host, port=port, log_config=None, server_header=False)
