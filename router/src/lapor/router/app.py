"""Composition root of the router service."""

from __future__ import annotations

from fastapi import FastAPI

from lapor.router.domain import RoutingTable
from lapor.router.fanout import agency_fan_out
from lapor.router.handlers import LiveRules, RulesWatcher, register
from lapor.router.model import shipped_model
from lapor.services.runtime import create_service
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
        subscribers=lambda rt: register(rt, rules),
        workers=[
            lambda rt: RulesWatcher(rt, rules),
            agency_fan_out,
        ],
        database=False,
        description="Routes every complaint to the authorized OPD (No Wrong Door Policy).",
    )
