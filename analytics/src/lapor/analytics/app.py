"""Composition root of the analytics service."""

from __future__ import annotations

from fastapi import FastAPI

from lapor.analytics.api import router
from lapor.analytics.read_model import CompletionProjection
from lapor.services.runtime import create_service
from lapor.services.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service(
        "analytics",
        settings or Settings(),
        routers=[router],
        projections=[CompletionProjection()],
        description="Completion metrics per OPD, from the event log.",
    )
