"""The OPD registry (``opd_registry.toml``): who can receive complaints.

Shared data, not a service: the router chooses among these units, the tracker authorizes
their liaison officers, and the NATS permissions are generated from the same list.

One registry per deployment, the area whose complaints the channel takes (its
``[deployment]``: a city, a regency or a province). The packaged deployments are named
``kota_pontianak`` (``opd_registry.toml``) and the files of ``deployments/``
(``kabupaten_kubu_raya``); ``LAPOR_DEPLOYMENT`` chooses one (default ``kota_pontianak``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from lapor.shared.events import OPD_CODE

LEVELS = ("subdistrict", "city", "province", "national", "soe")
"""Levels of government (or a state-owned enterprise) a unit belongs to. ``city`` is the
kabupaten/kota level: a regency's own dinas are ``city`` units too."""

KINDS = ("city", "regency", "province")
"""What a deployment describes: a kota, a kabupaten (districts and villages), a province."""

DEPLOYMENT_ENV = "LAPOR_DEPLOYMENT"
"""The environment variable naming the packaged deployment (``Settings.deployment``)."""
DEFAULT_DEPLOYMENT = "kota_pontianak"
"""The deployment whose registry is ``opd_registry.toml``."""
_DEPLOYMENTS_DIR = "deployments"
_DEPLOYMENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Deployment:
    """The area a registry describes: ``name`` ("Kota Pontianak") and ``kind`` (``KINDS``).

    A registry without a ``[deployment]`` (written before there was one) describes an
    unnamed city."""

    name: str = ""
    kind: str = "city"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError("OPD registry: [deployment] name must be a string")
        if self.kind not in KINDS:
            raise ValueError(
                f"OPD registry: [deployment] kind {self.kind!r} is not one of {', '.join(KINDS)}"
            )


@dataclass(frozen=True)
class Opd:
    """A unit (dinas, badan, kecamatan office, or a body outside the city): who it is.

    The one meaning of "OPD" in every service. What routes complaints to a unit (its
    categories, keywords, kelurahan) is the router's own data, not the registry's: the
    router's routing table refers to this object rather than copying or extending it.
    """

    code: str
    name: str
    level: str
    responsible_for: str = ""
    kecamatan: str | None = None


@dataclass(frozen=True)
class Registry:
    version: str
    coordinator: str
    units: tuple[Opd, ...]
    deployment: Deployment = field(default_factory=Deployment)
    """What the registry describes: its area's name and kind."""

    def __post_init__(self) -> None:
        codes = [u.code for u in self.units]
        if len(set(codes)) != len(codes):
            raise ValueError("OPD registry: duplicate codes")
        for unit in self.units:
            if not re.match(OPD_CODE, unit.code):
                raise ValueError(f"OPD registry: bad code {unit.code!r}")
            if unit.level not in LEVELS:
                raise ValueError(f"OPD registry: {unit.code}: unknown level {unit.level!r}")
        if self.coordinator not in codes:
            raise ValueError(f"OPD registry: coordinator {self.coordinator!r} is not a unit")

    def get(self, code: str) -> Opd | None:
        return next((u for u in self.units if u.code == code), None)

    def __contains__(self, code: object) -> bool:
        return any(u.code == code for u in self.units)

    @classmethod
    def from_text(cls, text: str) -> Registry:
        data = tomllib.loads(text)
        deployment = data.get("deployment", {})
        if not isinstance(deployment, dict) or set(deployment) - {"name", "kind"}:
            raise ValueError("OPD registry: [deployment] takes only 'name' and 'kind'")
        if "deployment" in data and not (
            isinstance(deployment.get("name"), str) and deployment["name"].strip()
        ):
            raise ValueError("OPD registry: [deployment] needs a name, e.g. 'Kota Pontianak'")
        return cls(
            version=data["version"],
            coordinator=data["coordinator"],
            units=tuple(Opd(**entry) for entry in data["opd"]),
            deployment=Deployment(**deployment),
        )


def deployments() -> tuple[str, ...]:
    """The names of the packaged deployments, sorted: ``kota_pontianak`` and the files of
    ``lapor/shared/deployments/``."""
    found = {DEFAULT_DEPLOYMENT}
    folder = files("lapor.shared").joinpath(_DEPLOYMENTS_DIR)
    if folder.is_dir():
        found |= {
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
            if entry.name.endswith(".toml") and _DEPLOYMENT_NAME.match(entry.name[:-5])
        }
    return tuple(sorted(found))


def deployment_name(deployment: str | None = None) -> str:
    """The packaged deployment meant: ``deployment`` if given, else ``LAPOR_DEPLOYMENT``,
    else ``kota_pontianak``. Raises ``ValueError`` for a name no packaged registry has."""
    name = deployment or os.environ.get(DEPLOYMENT_ENV) or DEFAULT_DEPLOYMENT
    known = deployments()
    if name not in known:
        raise ValueError(
            f"unknown deployment {name!r} ({DEPLOYMENT_ENV}): the packaged deployments are "
            f"{', '.join(known)}"
        )
    return name


def load_registry(deployment: str | None = None) -> Registry:
    """The packaged registry of ``deployment`` (by default the one ``LAPOR_DEPLOYMENT``
    names, else ``kota_pontianak``), read once per deployment."""
    return _packaged(deployment_name(deployment))


@cache
def _packaged(name: str) -> Registry:
    return Registry.from_text(_registry_file(name).read_text(encoding="utf-8"))


def _registry_file(name: str) -> Traversable:
    package = files("lapor.shared")
    if name == DEFAULT_DEPLOYMENT:
        return package.joinpath("opd_registry.toml")
    return package.joinpath(_DEPLOYMENTS_DIR).joinpath(f"{name}.toml")
