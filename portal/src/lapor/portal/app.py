"""Composition root of the portal: the citizen-facing web pages.

It holds no state: every page is made from intake's, the tracker's and analytics' HTTP
APIs, at ``LAPOR_INTAKE_URL``, ``LAPOR_TRACKER_URL`` and ``LAPOR_ANALYTICS_URL`` (the local
ports by default; ``lapor run`` passes them); tests hand it clients of in-process apps.
It needs NATS only as every service does (health); no database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lapor.portal import domain, i18n
from lapor.portal.csrf import Csrf
from lapor.portal.pages import Portal, Unavailable, render, router
from lapor.portal.staff.pages import GoElsewhere, Staff, go_elsewhere
from lapor.portal.staff.pages import router as staff_router
from lapor.router.category_names import names_of
from lapor.router.domain import RoutingTable
from lapor.services.runtime import create_service
from lapor.services.settings import DeadlineSettings, Settings
from lapor.shared.registry import load_registry

HERE = Path(__file__).parent


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAPOR_", extra="ignore")

    intake_url: str = Field(default="http://127.0.0.1:8080", description="intake's base URL")
    tracker_url: str = Field(default="http://127.0.0.1:8081", description="the tracker's")
    analytics_url: str = Field(default="http://127.0.0.1:8082", description="analytics'")
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)


def environments() -> dict[str, jinja2.Environment]:
    """One Jinja environment per language, its gettext the language's catalogue."""
    made = {}
    for lang in i18n.LANGUAGES:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
        made[lang] = env
    return made


def create_app(
    settings: Settings | None = None,
    *,
    own: PortalSettings | None = None,
    intake: httpx.AsyncClient | None = None,
    tracker: httpx.AsyncClient | None = None,
    analytics: httpx.AsyncClient | None = None,
) -> FastAPI:
    settings = settings or Settings()
    own = own or PortalSettings()
    app = create_service(
        "portal",
        settings,
        routers=[router, staff_router],
        database=False,
        description="The citizen-facing web pages (HTML): report, track, the public dashboard "
        "and list; a client of intake, the tracker and analytics.",
        multipart=True,  # the report form carries photos and documents
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    owned: list[httpx.AsyncClient] = []

    def client(given: httpx.AsyncClient | None, url: str) -> httpx.AsyncClient:
        if given is not None:
            return given
        made = httpx.AsyncClient(base_url=url, timeout=own.upstream_timeout_seconds)
        owned.append(made)
        return made

    table = RoutingTable.load(deployment=settings.deployment)
    registry = load_registry(settings.deployment)
    categories = names_of(c for unit in table.opds.values() for c in unit.categories)
    places = {
        unit.unit.kecamatan: tuple(unit.kelurahan)
        for unit in table.opds.values()
        if unit.unit.kecamatan
    }
    secret = settings.auth_secret.get_secret_value() if settings.auth_secret else None
    app.state.portal = Portal(
        intake=client(intake, own.intake_url),
        tracker=client(tracker, own.tracker_url),
        analytics=client(analytics, own.analytics_url),
        environments=environments(),
        csrf=Csrf(secret),
        categories=categories,
        places=dict(sorted(places.items())),
        timezone=ZoneInfo(DeadlineSettings().timezone),
        units={code: unit.unit.name for code, unit in table.opds.items()},
        site_name=registry.deployment.name or settings.deployment.replace("_", " ").title(),
        max_attachments=settings.max_attachments,
        max_attachment_bytes=settings.max_attachment_bytes,
    )

    app.state.staff = Staff(secret=secret, session_seconds=settings.staff_session_seconds)

    async def unavailable(request: Request, error: Exception) -> Response:
        return render(request, "unavailable.html", status_code=503)

    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(GoElsewhere, go_elsewhere)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            try:
                yield
            finally:
                for made in owned:
                    await made.aclose()

    app.router.lifespan_context = lifespan
    return app


__all__ = ["PortalSettings", "create_app", "domain"]
