"""Reading the routing table (``routing_table.toml``) into indexed, immutable data.

The table names registry units and gives each its categories, keywords and kelurahan;
the registry (``lapor.shared.registry``) gives their names and levels. ``parse_table``
checks both together and builds the indexes the decision (``lapor.router.domain``) looks
things up in: a malformed table, or one naming a unit the registry does not know, raises
``ValueError`` here, at load, rather than misrouting complaints later. Nothing here
decides anything.

Each packaged deployment (``lapor.shared.registry.deployments``) has its table:
``kota_pontianak`` is ``routing_table.toml``, the others are ``deployments/<name>.toml``.
A table may start from another packaged table (``base = "kota_pontianak"``): it takes the
base's escalation, territorial keywords and ``[[opd]]`` entries, drops the entries of
units its registry lacks, and replaces (by code) or adds the entries it lists itself.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lapor.router.places import kecamatan_keys, place_key
from lapor.router.text import normalize, stems, topic_words
from lapor.router.unit_rules import UnitRules
from lapor.shared.registry import DEFAULT_DEPLOYMENT, Registry, deployment_name, load_registry
from lapor.shared.registry import LEVELS as REGISTRY_LEVELS

LEVELS = frozenset(REGISTRY_LEVELS)
"""Levels of government (or state-owned enterprise) an OPD can belong to."""

CATEGORY_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
"""Same shape as ``Complaint.category``, so every table category can actually arrive."""

TERRITORIAL = "@territorial"
"""Owner of the territorial keywords: the sub-district office of the complaint's place."""
PLACE = "@place"
"""Owner of the kelurahan names, matched only so that their words are no keywords."""

_TOP_LEVEL = frozenset({"version", "base", "coordinator", "escalation", "territorial", "opd"})
_DEPLOYMENTS_DIR = "deployments"
_AREA_PREFIXES = frozenset({"kota", "kabupaten", "kab", "provinsi", "prov"})
_OPD_FIELDS = frozenset({"code", "categories", "keywords", "kelurahan", "escalation"})
_FROM_REGISTRY = frozenset({"name", "level", "kecamatan"})


@dataclass(frozen=True)
class Phrase:
    """A keyword as it is matched: its stemmed words, its spelling in the table, its owner
    (a unit's code, ``TERRITORIAL`` or ``PLACE``)."""

    words: tuple[str, ...]
    keyword: str
    opd: str


@dataclass(frozen=True)
class IndexedTable:
    """A validated routing table, indexed for deciding. Read-only: the mappings are views."""

    version: str
    """The file's ``version`` plus the text's hash, e.g. ``2026.11.1+ab12cd34``."""
    units: Mapping[str, UnitRules]
    """Every unit by code: the table's in file order, then the registry's other units."""
    order: Mapping[str, int]
    """Position of each unit in ``units``: the last tie-break between keyword candidates."""
    coordinator: UnitRules
    escalation: Mapping[str, tuple[str, ...]]
    """Level -> where a complaint goes, in order, when a unit of that level declines it."""
    by_category: Mapping[str, UnitRules]
    """Owner of each category that has exactly one."""
    territorial_categories: frozenset[str]
    """Categories held by sub-district offices, one per kecamatan."""
    offices: Mapping[str, UnitRules]
    """Sub-district offices by every spelling of their kecamatan (``kecamatan_keys``)."""
    places: Mapping[str, UnitRules]
    """Sub-district offices by their kelurahan and their kecamatan's full name
    (``place_key``)."""
    phrases: Mapping[str, tuple[Phrase, ...]]
    """Keyword phrases by their first stemmed word, longest first."""
    scattered: Mapping[str, tuple[Phrase, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Keyword phrases of several words (not places) by each of their stemmed words,
    longest first: what a phrase's words scattered in any order within a few words are
    matched with."""
    area: tuple[str, ...] = ()
    """The words of the deployment's own name without its kind ("kubu raya" of "Kabupaten
    Kubu Raya"): in an address they name the whole area, not the kecamatan Kubu."""


def packaged_tables() -> tuple[str, ...]:
    """The names of the packaged tables, sorted: ``kota_pontianak`` (``routing_table.toml``)
    and the files of ``lapor/router/deployments/``."""
    found = {DEFAULT_DEPLOYMENT}
    folder = files("lapor.router").joinpath(_DEPLOYMENTS_DIR)
    if folder.is_dir():
        found |= {
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
            if entry.name.endswith(".toml")
        }
    return tuple(sorted(found))


def packaged_table_text(name: str) -> str:
    """The TOML text of the packaged table ``name`` (``packaged_tables``)."""
    if name not in packaged_tables():
        raise ValueError(
            f"routing table: no packaged table {name!r}; the packaged tables are "
            f"{', '.join(packaged_tables())}"
        )
    package = files("lapor.router")
    if name == DEFAULT_DEPLOYMENT:
        return package.joinpath("routing_table.toml").read_text("utf-8")
    return package.joinpath(_DEPLOYMENTS_DIR).joinpath(f"{name}.toml").read_text("utf-8")


def read_table(
    path: Path | None = None,
    *,
    registry: Registry | None = None,
    deployment: str | None = None,
) -> IndexedTable:
    """Read a table file; without ``path``, the packaged table of ``deployment`` (by default
    the one ``LAPOR_DEPLOYMENT`` names, else ``kota_pontianak``). Checked against
    ``registry``, by default that deployment's packaged registry."""
    if path is None:
        text = packaged_table_text(deployment_name(deployment))
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_table(text, registry=registry, deployment=deployment)


def parse_table(
    text: str, *, registry: Registry | None = None, deployment: str | None = None
) -> IndexedTable:
    """Parse, validate and index a table given as TOML text (against ``registry``, by
    default the packaged registry of ``deployment``, see ``load_registry``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"routing table: not valid TOML: {e}") from e
    return _index(data, text, registry if registry is not None else load_registry(deployment))


def _index(data: Mapping[str, Any], text: str, registry: Registry) -> IndexedTable:
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise ValueError(f"routing table: unknown top-level key(s) {sorted(unknown)}")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise ValueError("routing table: 'version' must be a non-empty string")
    base = _read_base(data.get("base"))
    # The hash catches an edited table whose version nobody bumped (or an edited base).
    hashed = text if base is None else f"{text}\0{base.text}"
    digest = hashlib.sha256(hashed.encode("utf-8")).hexdigest()[:8]

    entries = data.get("opd", [] if base is not None else None)
    if not isinstance(entries, list) or (base is None and not entries):
        raise ValueError("routing table: at least one [[opd]] entry is required")
    ruled = [_parse_unit(entry, i, registry) for i, entry in enumerate(entries)]
    own: dict[str, UnitRules] = {}
    for rules in ruled:
        if rules.code in own:
            if base is not None:
                raise ValueError(
                    f"routing table: OPD code {rules.code!r} appears twice (an entry replaces "
                    f"the entry of its code in base {base.name!r}, or adds one, once)"
                )
            raise ValueError(f"routing table: OPD code {rules.code!r} appears twice")
        own[rules.code] = rules
    units: dict[str, UnitRules] = {}
    if base is not None:
        # The base's entries in its order, each replaced by this table's entry of its
        # code; then this table's other entries.
        for rules in _inherited_units(base, registry):
            units[rules.code] = own.get(rules.code, rules)
        ruled = list(units.values())
        for rules in own.values():
            if rules.code not in units:
                units[rules.code] = rules
                ruled.append(rules)
    else:
        units = dict(own)
    # Units of the registry without rules of their own can still be suggested by a
    # reporter or forwarded to.
    for unit in registry.units:
        if unit.code not in units:
            units[unit.code] = UnitRules(unit)
    listed = list(units.values())

    coordinator = data.get("coordinator", registry.coordinator)
    if not isinstance(coordinator, str) or coordinator not in units:
        raise ValueError(
            f"routing table: coordinator {coordinator!r} is not a unit of the OPD registry"
        )
    escalation = _parse_escalation(data.get("escalation", {}), units)
    if base is not None:
        inherited = _parse_escalation(_inherited_escalation(base, registry), units)
        escalation = {**inherited, **escalation}
    for rules in ruled:
        for code in rules.escalation:
            if code not in units:
                raise ValueError(
                    f"routing table: OPD {rules.code!r}: escalation: {code!r} is not a unit "
                    "of the OPD registry"
                )

    by_category, territorial_categories = _index_categories(listed)
    offices = _index_offices(listed)
    places = _index_places(listed)
    territorial_keywords = _territorial_keywords(data)
    if base is not None:
        inherited_keywords = _territorial_keywords(base.data)
        territorial_keywords = inherited_keywords + tuple(
            k for k in territorial_keywords if k not in inherited_keywords
        )
    if territorial_keywords and not offices:
        raise ValueError("routing table: territorial keywords need sub-district offices")

    phrases = _index_keywords(listed, territorial_keywords)
    return IndexedTable(
        version=f"{version.strip()}+{digest}",
        units=MappingProxyType(units),
        order=MappingProxyType({code: i for i, code in enumerate(units)}),
        coordinator=units[coordinator],
        escalation=MappingProxyType(escalation),
        by_category=MappingProxyType(by_category),
        territorial_categories=territorial_categories,
        offices=MappingProxyType(offices),
        places=MappingProxyType(places),
        phrases=MappingProxyType(phrases),
        scattered=MappingProxyType(_index_scattered(phrases)),
        area=_area(registry),
    )


@dataclass(frozen=True)
class _Base:
    """The packaged table a table starts from (``base``)."""

    name: str
    text: str
    data: Mapping[str, Any]


def _read_base(name: Any) -> _Base | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ValueError("routing table: 'base' must name a packaged table")
    if name not in packaged_tables():
        raise ValueError(
            f"routing table: base {name!r} is not a packaged table; the packaged tables are "
            f"{', '.join(packaged_tables())}"
        )
    text = packaged_table_text(name)
    data = tomllib.loads(text)
    if "base" in data:
        raise ValueError(
            f"routing table: base {name!r} has a base itself; a table starts from a table "
            "without one"
        )
    return _Base(name, text, data)


def _inherited_units(base: _Base, registry: Registry) -> list[UnitRules]:
    """The base's entries of the units ``registry`` has, without the units it lacks in
    their escalation lists."""
    entries = base.data.get("opd", [])
    kept: list[UnitRules] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or entry.get("code") not in registry:
            continue
        if isinstance(entry.get("escalation"), list):
            chain = [code for code in entry["escalation"] if code in registry]
            entry = {**entry, "escalation": chain}
        try:
            kept.append(_parse_unit(entry, i, registry))
        except ValueError as e:
            raise ValueError(f"{e} (in base {base.name!r})") from e
    return kept


def _inherited_escalation(base: _Base, registry: Registry) -> dict[str, Any]:
    """The base's ``[escalation]`` without the units ``registry`` lacks."""
    chains = base.data.get("escalation", {})
    if not isinstance(chains, Mapping):
        return chains
    return {
        level: [code for code in codes if code in registry] if isinstance(codes, list) else codes
        for level, codes in chains.items()
    }


def _territorial_keywords(data: Mapping[str, Any]) -> tuple[str, ...]:
    territorial = data.get("territorial", {})
    if not isinstance(territorial, Mapping) or set(territorial) - {"keywords"}:
        raise ValueError("routing table: [territorial] takes only 'keywords'")
    return _keyword_list(territorial.get("keywords", []), "routing table: [territorial] keywords")


def _area(registry: Registry) -> tuple[str, ...]:
    words = normalize(registry.deployment.name)
    if len(words) > 1 and words[0] in _AREA_PREFIXES:
        words = words[1:]
    return words


def _parse_unit(entry: Any, index: int, registry: Registry) -> UnitRules:
    if not isinstance(entry, Mapping):
        raise ValueError(f"routing table: [[opd]] #{index + 1} is not a table")
    code = entry.get("code")
    where = f"routing table: OPD {code!r}" if code else f"routing table: [[opd]] #{index + 1}"
    duplicated = set(entry) & _FROM_REGISTRY
    if duplicated:
        raise ValueError(
            f"{where}: {sorted(duplicated)} come from the OPD registry, not the routing table"
        )
    unknown = set(entry) - _OPD_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    unit = registry.get(code) if isinstance(code, str) else None
    if unit is None:
        raise ValueError(f"{where}: code must be a unit of the OPD registry")
    categories = _string_list(entry.get("categories", []), f"{where}: categories")
    for category in categories:
        if not CATEGORY_CODE.match(category):
            raise ValueError(f"{where}: category {category!r} must match {CATEGORY_CODE.pattern}")
    keywords = _keyword_list(entry.get("keywords", []), f"{where}: keywords")
    kelurahan = _string_list(entry.get("kelurahan", []), f"{where}: kelurahan")
    if kelurahan and unit.level != "subdistrict":
        raise ValueError(f"{where}: only sub-district offices have kelurahan")
    if unit.level == "subdistrict" and not unit.kecamatan:
        raise ValueError(f"{where}: the registry gives this sub-district office no kecamatan")
    for name in kelurahan:
        if not place_key(name):
            raise ValueError(f"{where}: kelurahan {name!r} has no words")
    escalation = _string_list(entry.get("escalation", []), f"{where}: escalation")
    if code in escalation:
        raise ValueError(f"{where}: escalation names the unit itself")
    return UnitRules(
        unit, categories=categories, keywords=keywords, kelurahan=kelurahan, escalation=escalation
    )


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings")
    if len(set(value)) != len(value):
        raise ValueError(f"{where} has duplicates")
    return tuple(value)


def _keyword_list(value: Any, where: str) -> tuple[str, ...]:
    keywords = _string_list(value, where)
    for keyword in keywords:
        words = stems(keyword)
        if not words:
            raise ValueError(f"{where}: keyword {keyword!r} has no words")
        if topic_words(keyword).stems != words:
            # Such a keyword could never match: a complaint's formulas and addressee line
            # are not read as its topic.
            raise ValueError(
                f"{where}: keyword {keyword!r} reads as a polite formula or an addressee line"
            )
    return keywords


def _parse_escalation(value: Any, units: Mapping[str, UnitRules]) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ValueError("routing table: [escalation] must be a table of level = [codes]")
    chains: dict[str, tuple[str, ...]] = {}
    for level, codes in value.items():
        if level not in LEVELS:
            raise ValueError(
                f"routing table: escalation level {level!r} is not one of {sorted(LEVELS)}"
            )
        chain = _string_list(codes, f"routing table: escalation.{level}")
        for code in chain:
            if code not in units:
                raise ValueError(
                    f"routing table: escalation.{level}: {code!r} is not a unit of the OPD registry"
                )
        chains[level] = chain
    return chains


def _index_categories(
    units: list[UnitRules],
) -> tuple[dict[str, UnitRules], frozenset[str]]:
    """Category owners, checking that each category has exactly one.

    A category held only by sub-district offices is territorial: it has one owner per
    kecamatan, chosen by the complaint's location.
    """
    holders: dict[str, list[UnitRules]] = {}
    for rules in units:
        for category in rules.categories:
            holders.setdefault(category, []).append(rules)
    by_category: dict[str, UnitRules] = {}
    territorial: set[str] = set()
    for category, owners in holders.items():
        if all(o.level == "subdistrict" for o in owners):
            seen: dict[str, UnitRules] = {}
            for office in owners:
                for key in kecamatan_keys(office.kecamatan or ""):
                    if key in seen:
                        raise ValueError(
                            f"routing table: category {category!r} is held by both "
                            f"{seen[key].code!r} and {office.code!r} for the same kecamatan"
                        )
                    seen[key] = office
            territorial.add(category)
        elif len(owners) == 1:
            by_category[category] = owners[0]
        else:
            codes = ", ".join(repr(o.code) for o in owners)
            raise ValueError(
                f"routing table: category {category!r} must map to exactly one OPD, not {codes}"
            )
    return by_category, frozenset(territorial)


def _index_offices(units: list[UnitRules]) -> dict[str, UnitRules]:
    """Sub-district offices by every spelling of their kecamatan."""
    offices: dict[str, UnitRules] = {}
    for rules in units:
        if rules.level != "subdistrict" or not rules.kecamatan:
            continue
        for key in kecamatan_keys(rules.kecamatan):
            other = offices.get(key)
            if other is not None:
                raise ValueError(
                    f"routing table: {other.code!r} and {rules.code!r} have the same kecamatan"
                )
            offices[key] = rules
    return offices


def _index_places(units: list[UnitRules]) -> dict[str, UnitRules]:
    """Sub-district offices by their kelurahan and by their kecamatan's full name."""
    places: dict[str, UnitRules] = {}
    for rules in units:
        names = [*rules.kelurahan, *([rules.kecamatan] if rules.kecamatan else [])]
        for name in names:
            key = place_key(name)
            other = places.get(key)
            if other is not None and other.code != rules.code:
                raise ValueError(
                    f"routing table: kelurahan {name!r} belongs to both {other.code!r} and "
                    f"{rules.code!r}"
                )
            places[key] = rules
    return places


def _index_keywords(
    units: list[UnitRules], territorial: tuple[str, ...]
) -> dict[str, tuple[Phrase, ...]]:
    """Keyword phrases (stemmed) by first word, longest first, checking each has one owner.

    Two spellings of one keyword that stem alike ("jalan berlubang", "jln berlubang") are
    one phrase, named after the first. Since a phrase's words also match in any order
    (``_index_scattered``), two keywords whose words are the same in another order
    ("mati lampu", "lampu mati") must have one owner too.
    """
    owners: dict[tuple[str, ...], Phrase] = {}
    unordered: dict[tuple[str, ...], Phrase] = {}
    owned = [(rules.code, keyword) for rules in units for keyword in rules.keywords]
    owned += [(TERRITORIAL, keyword) for keyword in territorial]
    for code, keyword in owned:
        key = stems(keyword)
        other = owners.get(key)
        if other is not None:
            if other.opd == code:
                continue
            raise ValueError(
                f"routing table: keyword {keyword!r} of {_owner(code)} is already a keyword "
                f"of {_owner(other.opd)} (both read as {' '.join(key)!r})"
            )
        other = unordered.get(tuple(sorted(key)))
        if other is not None and other.opd != code:
            raise ValueError(
                f"routing table: keyword {keyword!r} of {_owner(code)} has the words of "
                f"{other.keyword!r} of {_owner(other.opd)} in another order (words of a "
                "keyword match in any order)"
            )
        owners[key] = unordered[tuple(sorted(key))] = Phrase(words=key, keyword=keyword, opd=code)
    for rules in units:
        for name in rules.kelurahan:
            key = stems(name)
            if key not in owners:  # a keyword spelled like a place stays a keyword
                owners[key] = Phrase(words=key, keyword=name, opd=PLACE)
    index: dict[str, list[Phrase]] = {}
    for phrase in owners.values():
        index.setdefault(phrase.words[0], []).append(phrase)
    return {
        first: tuple(sorted(phrases, key=lambda p: -len(p.words)))
        for first, phrases in index.items()
    }


def _index_scattered(phrases: Mapping[str, tuple[Phrase, ...]]) -> dict[str, tuple[Phrase, ...]]:
    """Keyword phrases of several words by each of their words, longest first.

    Places are left out: "Sungai Jawi" is a place only as written. Of two keywords of one
    unit with the same words in another order, the first stands for both.
    """
    index: dict[str, list[Phrase]] = {}
    seen: set[tuple[str, ...]] = set()
    for group in phrases.values():
        for phrase in group:
            words = tuple(sorted(phrase.words))
            if len(words) < 2 or phrase.opd == PLACE or words in seen:
                continue
            seen.add(words)
            for word in set(words):
                index.setdefault(word, []).append(phrase)
    return {
        word: tuple(sorted(group, key=lambda p: -len(p.words))) for word, group in index.items()
    }


def _owner(code: str) -> str:
    return "[territorial]" if code == TERRITORIAL else repr(code)
