"""Composition root of the router service.

Two roles (``LAPOR_ROLE``, ``lapor serve router --role``): ``routing``, the consumers that
route new and declined complaints and the watchers of the rules and model (any number of
replicas: they share the durable consumers, and every append is checked), and
``fanout``, which copies the log to the agency topics in order (one process); ``all``,
the default, runs both.
"""

from __future__ import annotations

from fastapi import FastAPI

from lapor.router.domain import RoutingTable
from lapor.router.fanout import agency_fan_out
from lapor.router.handlers import LiveRules, RulesWatcher, register
from lapor.router.model import shipped_model
from lapor.services.runtime import Part, create_service
from lapor.services.settings import Settings


def create_app(settings: Settings | None = None, table: RoutingTable | None = None) -> FastAPI:
    """``table``: the rules to start with (default: the packaged table of the settings'
    deployment, ``LAPOR_DEPLOYMENT``); a table published to the rules bucket replaces it
    while running, and so does a published model the one the router starts with
    (``LAPOR_ROUTING_MODEL``: the shipped one, or none)."""
    settings = settings or Settings()
    model = shipped_model() if settings.routing_model == "shipped" else None
    rules = LiveRules(table or RoutingTable.load(deployment=settings.deployment), model)
    return create_service(
        "router",
        settings,
        roles={
            "routing": Part(
                subscribers=lambda rt: register(rt, rules),
                workers=[lambda rt: RulesWatcher(rt, rules)],
                scales_out=True,
            ),
            "fanout": Part(workers=[agency_fan_out]),
        },
        database=False,
        description="Routes every complaint to the authorized OPD (No Wrong Door Policy).",
    )
