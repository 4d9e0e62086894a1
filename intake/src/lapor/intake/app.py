"""Composition root of the intake service."""

from __future__ import annotations

from fastapi import FastAPI

from lapor.intake.api import router
from lapor.services.runtime import create_service
from lapor.services.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service(
        "intake",
        settings or Settings(),
        routers=[router],
        database=False,
        description="Accepts complaints from every channel and logs ComplaintReceived.",
        multipart=True,  # POST /complaints with files
    )
