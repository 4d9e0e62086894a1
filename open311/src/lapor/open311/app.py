"""Composition root of the Open311 service.

It talks to intake and the tracker over HTTP, at ``LAPOR_INTAKE_URL`` and
``LAPOR_TRACKER_URL`` (the local ports by default); tests hand it clients of in-process
apps instead. Its API keys are in ``LAPOR_OPEN311_KEYS_FILE`` (``lapor.open311.keys``).
It needs NATS only as every service does (health); no database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lapor.open311.api import Open311, error_response, router
from lapor.open311.domain import Open311Error, catalogue, service_notice
from lapor.open311.keys import KeyStore
from lapor.router.domain import RoutingTable
from lapor.services.runtime import create_service
from lapor.services.settings import DeadlineSettings, Settings
from lapor.shared.registry import Registry, load_registry


class Open311Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAPOR_", extra="ignore")

    intake_url: str = Field(default="http://127.0.0.1:8080", description="intake's base URL")
    tracker_url: str = Field(default="http://127.0.0.1:8081", description="the tracker's")
    open311_keys_file: Path | None = Field(
        default=None, description="The API keys (hashed); default <data_dir>/open311_keys.json"
    )
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)


def keys_path(settings: Settings, own: Open311Settings | None = None) -> Path:
    own = own or Open311Settings()
    return own.open311_keys_file or settings.data_dir / "open311_keys.json"


def create_app(
    settings: Settings | None = None,
    *,
    own: Open311Settings | None = None,
    intake: httpx.AsyncClient | None = None,
    tracker: httpx.AsyncClient | None = None,
) -> FastAPI:
    settings = settings or Settings()
    own = own or Open311Settings()
    app = create_service(
        "open311",
        settings,
        routers=[router],
        database=False,
        description="Open311 GeoReport v2: the routing categories as services, complaints as "
        "service requests (never a confidential one); a client of intake and the tracker.",
    )
    owned: list[httpx.AsyncClient] = []

    def client(given: httpx.AsyncClient | None, url: str) -> httpx.AsyncClient:
        if given is not None:
            return given
        made = httpx.AsyncClient(base_url=url, timeout=own.upstream_timeout_seconds)
        owned.append(made)
        return made

    table = RoutingTable.load(deployment=settings.deployment)
    registry = load_registry(settings.deployment)
    app.state.open311 = Open311(
        intake=client(intake, own.intake_url),
        tracker=client(tracker, own.tracker_url),
        keys=KeyStore(keys_path(settings, own)),
        services=catalogue(list(table.opds.values()), table.coordinator.name),
        notice=service_notice(DeadlineSettings().policy()),
        jurisdiction=_jurisdiction(registry, settings.deployment),
    )

    async def open311_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, Open311Error)
        fmt = request.path_params.get("fmt")
        return error_response("xml" if fmt == "xml" else "json", error)

    app.add_exception_handler(Open311Error, open311_error)

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


def _jurisdiction(registry: Registry, deployment: str) -> str:
    return registry.deployment.name or deployment.replace("_", " ").title()
