"""The services are found through their entry points, each with its own local port."""

from __future__ import annotations

from lapor.services.discovery import Service, installed_services, local_ports


def test_every_service_of_the_workspace_is_found_in_the_order_of_its_port() -> None:
    services = installed_services()
    assert list(services) == ["intake", "tracker", "analytics", "router", "open311", "portal"]
    assert [s.port for s in services.values()] == [8080, 8081, 8082, 8083, 8084, 8085]


def test_a_base_port_shifts_every_port_together() -> None:
    services = {
        "a": Service("a", 8080, "m:f"),
        "b": Service("b", 8081, "m:f"),
        "c": Service("c", 8085, "m:f"),
    }
    assert local_ports(services) == {"a": 8080, "b": 8081, "c": 8085}
    assert local_ports(services, 9000) == {"a": 9000, "b": 9001, "c": 9005}
    assert local_ports({}, 9000) == {}
