"""Composition root of the tracker service.

Two roles (``LAPOR_ROLE``, ``lapor serve tracker --role``): ``api``, the HTTP API, which
reads the status read model and appends commands to the log (any number of replicas),
and ``projector``, which keeps the read model (``tracker.status``) and runs the deadline
clocks (one process); ``all``, the default, runs both.
"""

from __future__ import annotations

from fastapi import FastAPI

from lapor.services.runtime import Part, create_service
from lapor.services.settings import DeadlineSettings, Settings
from lapor.shared.registry import load_registry
from lapor.tracker.api import router
from lapor.tracker.attachments_api import attachments_router
from lapor.tracker.exports import exports_router
from lapor.tracker.read_model import StatusProjection
from lapor.tracker.scheduler import DeadlineScheduler, Now, utc_now


def create_app(
    settings: Settings | None = None,
    deadlines: DeadlineSettings | None = None,
    now: Now = utc_now,
) -> FastAPI:
    settings = settings or Settings()
    deadlines = deadlines or DeadlineSettings()
    coordinator = load_registry(settings.deployment).coordinator
    return create_service(
        "tracker",
        settings,
        roles={
            "api": Part(routers=[router, exports_router, attachments_router], scales_out=True),
            "projector": Part(
                projections=[StatusProjection(deadlines.calendar(), deadlines.policy())],
                workers=[
                    lambda rt: DeadlineScheduler(rt, coordinator, deadlines.check_seconds, now)
                ],
            ),
        },
        description="Complaint lifecycle, status and history, deadlines and escalation.",
    )
