"""Every service's ``/docs`` (Swagger UI) and ``/redoc`` work without the internet: each
script, stylesheet and icon the pages load is served by the service itself, and nothing in
them points to a CDN (``lapor.services.docs``).

No servers: the pages and their assets need neither NATS nor PostgreSQL (``create_service``
connects in its lifespan, which these requests do not run).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from lapor.services.discovery import installed_services
from lapor.services.settings import Settings

SETTINGS = Settings(
    nats_url="nats://127.0.0.1:1",
    database_url="postgresql://nowhere/none",
    auth_secret="docs-test-secret",
    log_format="console",
)
CDNS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com")
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
OPENAPI = re.compile(r"""(?:url:|spec-url=)\s*["']([^"']+)["']""")


@pytest.mark.parametrize("name", sorted(installed_services()))
@pytest.mark.parametrize(
    ("page", "kinds"),
    [
        ("/docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "css"}),
        ("/redoc", {"redoc.standalone.js": "javascript"}),
    ],
)
async def test_docs_pages_load_only_local_assets(name, page, kinds):
    app = installed_services()[name].create_app(SETTINGS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        r = await client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        for cdn in CDNS:
            assert cdn not in html, f"{name}{page} points to {cdn}"
        assert "http://" not in html and "https://" not in html, html

        assets = ASSET.findall(html)
        for filename in kinds:
            assert any(url.endswith("/" + filename) for url in assets), (filename, assets)
        assert any(url.endswith("favicon.png") for url in assets), assets
        for url in assets:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc and url.startswith("/"), url
            got = await client.get(url)
            assert got.status_code == 200, url
            assert len(got.content) > 1000, url  # the asset itself, not a stub
            filename = url.rsplit("/", 1)[-1]
            if filename in kinds:
                assert kinds[filename] in got.headers["content-type"], got.headers

        # The page loads the service's own OpenAPI document.
        [openapi] = OPENAPI.findall(html)
        assert openapi == "/openapi.json"
        assert (await client.get(openapi)).json()["info"]["title"] == f"lapor {name}"


async def test_docs_follow_a_root_path():
    """Behind a proxy that strips a prefix (``--root-path``), the page names its assets
    under that prefix, so the browser asks the proxy for them."""
    app = installed_services()["tracker"].create_app(SETTINGS)
    transport = httpx.ASGITransport(app=app, root_path="/tracker")
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        html = (await client.get("/docs")).text
    assert "/tracker/docs/static/swagger-ui-bundle.js" in html
    assert "/tracker/openapi.json" in html
