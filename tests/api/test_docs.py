"""`/docs` works with no network: Swagger UI comes from the package, same origin only."""

from __future__ import annotations

import re

import httpx

#: Every URL an HTML attribute or the Swagger UI set-up script names.
URL = re.compile(r"""(?:src|href)="([^"]+)"|url: ?'([^']+)'""")


async def test_docs_page_names_only_same_origin_urls(http: httpx.AsyncClient) -> None:
    """The /docs HTML loads its script, style, icon and OpenAPI from this server."""
    page = await http.get("/docs")
    assert page.status_code == 200
    urls = [a or b for a, b in URL.findall(page.text)]
    assert "/static/swagger-ui/swagger-ui-bundle.js" in urls
    assert "/static/swagger-ui/swagger-ui.css" in urls
    assert "/openapi.json" in urls
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    assert '"validatorUrl": null' in page.text


async def test_docs_assets_are_served_and_redoc_is_gone(http: httpx.AsyncClient) -> None:
    """The Swagger UI script, style and icon answer 200; the CDN-bound /redoc is not served."""
    for path, kind in (
        ("/static/swagger-ui/swagger-ui-bundle.js", "javascript"),
        ("/static/swagger-ui/swagger-ui.css", "text/css"),
        ("/static/swagger-ui/favicon-32x32.png", "image/png"),
        ("/openapi.json", "application/json"),
    ):
        answer = await http.get(path)
        assert answer.status_code == 200, path
        assert kind in answer.headers["content-type"], (path, answer.headers["content-type"])
    assert (await http.get("/redoc")).status_code == 404
