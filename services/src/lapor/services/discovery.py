"""The services installed here, found through the ``lapor.services`` entry point group.

Each service publishes a :class:`Service` (its name, local port, whether it may run as
several processes, and its composition root), so that ``lapor run`` and ``lapor serve``
know nothing about any one of them: a new service is its folder and one line in the
workspace's pyproject, and nothing else learns its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lapor.services.settings import Settings


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    """Where it listens on a local machine (``lapor run``; ``--base-port`` shifts them all)."""
    app: str
    """Its composition root as ``module:function``, a function of optional ``Settings``.
    A string, not the function: finding the services must not import all of their code, and
    uvicorn's worker processes import it by this name."""
    stateless: bool = False
    """Follows no log in order, so several processes (or replicas) may share its work."""

    def create_app(self, settings: Settings | None = None) -> FastAPI:
        module, _, function = self.app.partition(":")
        return getattr(import_module(module), function)(settings)


def installed_services() -> dict[str, Service]:
    """Every installed service by name, in the order of their ports."""
    found: dict[str, Service] = {}
    for ep in entry_points(group="lapor.services"):
        service = ep.load()
        if not isinstance(service, Service) or service.name != ep.name:
            raise RuntimeError(f"entry point lapor.services:{ep.name} is not its Service")
        found[ep.name] = service
    return dict(sorted(found.items(), key=lambda item: item[1].port))


def local_ports(services: dict[str, Service], base_port: int | None = None) -> dict[str, int]:
    """Each service's local port; with ``base_port``, all shifted together so that the
    lowest one (intake's) is ``base_port``, the others at the same distance as declared.
    Give it every installed service, also to run a few: a port never depends on which
    others run."""
    if not services or base_port is None:
        return {name: s.port for name, s in services.items()}
    shift = base_port - min(s.port for s in services.values())
    return {name: s.port + shift for name, s in services.items()}
