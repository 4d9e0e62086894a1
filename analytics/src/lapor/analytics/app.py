"""Composition root of the analytics service.

Two roles (``LAPOR_ROLE``, ``lapor serve analytics --role``): ``api``, the HTTP API over
the read models (any number of replicas), and ``projector``, which keeps them (one
process); ``all``, the default, runs both.
"""

from __future__ import annotations

from fastapi import FastAPI

from lapor.analytics.api import router
from lapor.analytics.exports import exports_router
from lapor.analytics.metrics import Rules
from lapor.analytics.read_model import CompletionProjection, FactsProjection
from lapor.services.runtime import Part, create_service
from lapor.services.settings import DeadlineSettings, Settings


def create_app(
    settings: Settings | None = None, deadlines: DeadlineSettings | None = None
) -> FastAPI:
    app = create_service(
        "analytics",
        settings or Settings(),
        roles={
            "api": Part(routers=[router, exports_router], scales_out=True),
            "projector": Part(projections=[CompletionProjection(), FactsProjection()]),
        },
        description="The figures agencies are judged on, from the event log.",
    )
    # The tracker's deadlines and working days: both count the same days.
    deadlines = deadlines or DeadlineSettings()
    app.state.metrics_rules = Rules(
        calendar=deadlines.calendar(), first_follow_up_days=deadlines.first_follow_up_days
    )
    return app
