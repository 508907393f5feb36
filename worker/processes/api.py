"""The API process: the FastAPI app that serves the JSON API, the web pages, signed
links, webhook ingress, health checks and `/metrics`, bound to one Temporal client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from worker.client.handoffs import HandoffError
from worker.http.api import router as api_router
from worker.http.auth import Authenticator
from worker.http.errors import ErrorBody, error_response, handoff_error, temporal_error
from worker.http.link_pages import router as link_router
from worker.http.links import SignedLinks
from worker.http.outbox import outbox_enabled
from worker.http.outbox import router as outbox_router
from worker.http.pages import router as page_router
from worker.http.people_api import router as people_router
from worker.http.render import templates
from worker.http.stalls import BadFilter, app_store, bad_filter_error
from worker.http.stalls import api as stalls_api
from worker.http.stalls import pages as stalls_pages
from worker.limits import install_limits
from worker.logging import register_secrets
from worker.metrics import CONTENT_TYPE, ApiMetrics
from worker.scopes import OutOfScope, out_of_scope_error
from worker.settings import Settings
from worker.stalls.metrics import StallCollector

log = structlog.get_logger("handoff.api")
STATIC = Path(__file__).parents[1] / "http" / "static"


class RequestMetrics:
    """ASGI middleware: count and time requests by route template, fresh log context."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        started, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], route, status[0], time.perf_counter() - started
            )


def create_app(
    settings: Settings, client: Client, *, extra_routers: Sequence[APIRouter] = ()
) -> FastAPI:
    """The API and web app bound to a Temporal client (see the module docstring)."""
    register_secrets(
        *(t.get_secret_value() for t in settings.api_tokens.values()),
        settings.link_secret.get_secret_value() if settings.link_secret else None,
    )
    app = FastAPI(
        title="Handoff",
        version="1",
        summary="Approvals, handoff actions and the stall board for every handoff type.",
        docs_url=None,  # served below from the package: /docs works with no network
        redoc_url=None,  # ReDoc loads from a CDN; Swagger UI is enough
    )
    app.state.settings, app.state.client = settings, client
    app.state.auth = Authenticator(settings)
    app.state.metrics = ApiMetrics()
    app.state.links = SignedLinks.from_settings(settings)
    app.state.templates = templates()
    app.add_exception_handler(HandoffError, handoff_error)
    app.add_exception_handler(OutOfScope, out_of_scope_error)
    app.add_exception_handler(BadFilter, bad_filter_error)
    app.add_exception_handler(RPCError, temporal_error)
    app.add_exception_handler(RuntimeError, temporal_error)
    app.state.metrics.registry.register(StallCollector(lambda: app_store(app)))
    install_limits(app, settings)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.include_router(api_router)
    app.include_router(people_router)
    app.include_router(page_router)
    app.include_router(stalls_api)  # why deals stall: figures, CSV and the page
    app.include_router(stalls_pages)
    app.include_router(link_router)
    for extra in extra_routers:
        app.include_router(extra)
    if outbox_enabled(settings):  # the dev outbox: `handoff dev` only, never in production
        app.include_router(outbox_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        """Swagger UI from worker/http/static/swagger-ui: no URL leaves this origin."""
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title="Handoff API",
            swagger_js_url=f"{root}/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to validator.swagger.io
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorBody}})
    async def readyz() -> Response:
        """Temporal is reachable (503 otherwise)."""
        try:
            await client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=3)
            )
        except Exception as exc:  # any failure to reach Temporal means "not ready"
            return error_response(503, "unavailable", f"Temporal is not reachable: {exc}")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        # off the event loop: the stall figures read their store at scrape time
        body = await asyncio.to_thread(app.state.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    return app


async def run_api(settings: Settings, *, extra_routers: Sequence[APIRouter] = ()) -> None:
    """Connect to Temporal and serve the API on `settings.api_host:api_port` until stopped."""
    import uvicorn

    from worker.client.temporal import connect
    from worker.http.ingress.temporal_starter import ingress_routers
    from worker.proxies import behind_proxies

    client = await connect(settings)
    routers = [*ingress_routers(settings, client), *extra_routers]
    app = create_app(settings, client, extra_routers=routers)
    config = uvicorn.Config(
        behind_proxies(app, settings.trusted_proxies),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=False,  # behind_proxies: only from HANDOFF_TRUSTED_PROXIES
        server_header=False,
    )
    log.info("api started", url=settings.public_url, temporal=settings.temporal_address)
    await uvicorn.Server(config).serve()
