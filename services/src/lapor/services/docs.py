"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work offline.

FastAPI's own pages load their JavaScript, CSS and favicon from CDNs (and ReDoc its fonts
from Google), so on a machine or cluster without the internet they are blank. Here every
asset comes from the service itself, under ``/docs/static/``: the files shipped in the
``fastapi-offline`` wheel (Swagger UI 5, ReDoc 2 standalone, FastAPI's favicon; MIT,
Apache-2.0 for Swagger UI), of which only the ``static/`` folder is used.

Behind a proxy that strips a path prefix (``lapor run``'s gateway, an Ingress with a
rewrite), the prefix it names in ``X-Forwarded-Prefix`` becomes the app's ``root_path``, so
the pages, their assets and the OpenAPI ``servers`` point back through the proxy.

Call :func:`install_docs` on an app created with ``docs_url=None, redoc_url=None``.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

DOCS = "/docs"
REDOC = "/redoc"
STATIC = "/docs/static"
ASSETS = Path(str(files("fastapi_offline") / "static"))
"""swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png."""
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
FORWARDED_PREFIX = b"x-forwarded-prefix"
PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
"""A prefix we take: path segments only, nothing that could break out of a URL or HTML."""


class ForwardedPrefix:
    """ASGI middleware: a request forwarded with ``X-Forwarded-Prefix: /api/tracker`` (its
    path already stripped of it) is seen as served under it: ``root_path`` is the prefix,
    and ``path`` carries it as ASGI wants (routing takes it off again). Any other request,
    or a prefix that is not plain path segments, passes unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            given = next((v for k, v in scope["headers"] if k == FORWARDED_PREFIX), None)
            prefix = given.decode("latin-1").rstrip("/") if given else ""
            if prefix and PREFIX.match(prefix):
                # In place: the outer middleware reads the route the router sets on it.
                scope["root_path"] = prefix
                scope["path"] = prefix + scope["path"]
                if scope.get("raw_path") is not None:
                    scope["raw_path"] = prefix.encode() + scope["raw_path"]
        await self.app(scope, receive, send)


def install_docs(app: FastAPI) -> None:
    """Serve the assets and the two pages (none of them in the OpenAPI document), under
    the prefix a proxy forwards with (``ForwardedPrefix``)."""
    app.add_middleware(ForwardedPrefix)
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-static")

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC}/favicon.png",
            with_google_fonts=False,
        )
