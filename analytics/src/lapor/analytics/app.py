"""Composition root of the analytics service."""

from __future__ import annotations

from fastapi import FastAPI

from lapor.analytics.api import router
from lapor.analytics.config import MetricsConfig
from lapor.analytics.exports import exports_router
from lapor.analytics.read_model import CompletionProjection, FactsProjection
from lapor.services.runtime import create_service
from lapor.services.settings import Settings


def create_app(settings: Settings | None = None, config: MetricsConfig | None = None) -> FastAPI:
    app = create_service(
        "analytics",
        settings or Settings(),
        routers=[router, exports_router],
        projections=[CompletionProjection(), FactsProjection()],
        description="The figures agencies are judged on, from the event log.",
    )
    app.state.metrics_rules = (config or MetricsConfig()).rules()
    return app
