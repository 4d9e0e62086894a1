"""The OPD registry (``opd_registry.toml``): who can receive complaints.

Shared data, not a service: the router chooses among these units, the tracker authorizes
their liaison officers, and the NATS permissions are generated from the same list.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from lapor.shared.events import OPD_CODE

LEVELS = ("subdistrict", "city", "province", "national", "soe")
"""Levels of government (or a state-owned enterprise) a unit belongs to."""


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
        return cls(
            version=data["version"],
            coordinator=data["coordinator"],
            units=tuple(Opd(**entry) for entry in data["opd"]),
        )


@cache
def load_registry() -> Registry:
    """The registry shipped with ``lapor.shared``."""
    return Registry.from_text(files("lapor.shared").joinpath("opd_registry.toml").read_text())
