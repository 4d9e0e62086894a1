"""Composition root of the tracker service."""

from __future__ import annotations

from fastapi import FastAPI

from lapor.services.runtime import create_service
from lapor.services.settings import Settings
from lapor.tracker.api import router
from lapor.tracker.read_model import StatusProjection


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service(
        "tracker",
        settings or Settings(),
        routers=[router],
        projections=[StatusProjection()],
        description="Complaint status and history; the agency's follow-up and resolution.",
    )
