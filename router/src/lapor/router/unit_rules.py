"""The routing rules of one unit of the OPD registry."""

from __future__ import annotations

from dataclasses import dataclass

from lapor.shared.registry import Opd


@dataclass(frozen=True)
class UnitRules:
    """What routes complaints to one registry unit: its categories, keywords and kelurahan.

    There is one kind of OPD, the registry's (``lapor.shared.registry.Opd``): who the unit
    is (code, name, level, kecamatan, responsibility). This is not a second kind of OPD but
    the routing table's entry for one, holding the registry's unit itself rather than a copy
    of its fields. The two stay separate classes because they are owned and changed apart:
    the registry is shared data that the tracker (officers' tokens) and the NATS
    permissions read too, while the rules are the router's own, versioned with its table
    and replaced while it runs (``lapor-rules publish``); folding the rules into the
    registry's class would put the router's vocabulary into every service's contract.

    The unit's fields are readable here too (``rules.name`` is ``rules.unit.name``), since
    routing reads them at every decision.
    """

    unit: Opd
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    kelurahan: tuple[str, ...] = ()
    """Villages of a sub-district office's kecamatan: where a complaint's place is found."""
    escalation: tuple[str, ...] = ()
    """Where the unit's complaints go, in order, when it declines them, if not where its
    level's go: a declined city road to the province and then the national roads office."""

    @property
    def code(self) -> str:
        return self.unit.code

    @property
    def name(self) -> str:
        return self.unit.name

    @property
    def level(self) -> str:
        return self.unit.level

    @property
    def kecamatan(self) -> str | None:
        return self.unit.kecamatan

    @property
    def responsible_for(self) -> str:
        return self.unit.responsible_for
