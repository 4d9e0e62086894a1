"""Composition root of the router service."""

from __future__ import annotations

from fastapi import FastAPI

from lapor.router.domain import RoutingTable
from lapor.router.handlers import agency_fan_out, register
from lapor.services.runtime import create_service
from lapor.services.settings import Settings


def create_app(settings: Settings | None = None, table: RoutingTable | None = None) -> FastAPI:
    table = table or RoutingTable.load()
    return create_service(
        "router",
        settings or Settings(),
        subscribers=lambda rt: register(rt, table),
        workers=[lambda rt: agency_fan_out(rt, table.coordinator.code)],
        database=False,
        description="Routes every complaint to the authorized OPD (No Wrong Door Policy).",
    )
