"""Routing rules: which OPD is authorized to act on a complaint (disposisi).

The rules are data (``routing_table.toml``); the units they route to, with their names
and levels of government, are the shared OPD registry (``lapor.shared.registry``). This
module reads both once and applies the rules in a fixed order, so every decision can be
explained in words and reproduced from the table version it names. Pure: apart from
reading files in ``RoutingTable.load`` nothing here does I/O.

Decision order (first match wins):

1. the complaint's category: the OPD that owns it; a category owned by sub-district
   offices (``pelayanan_kecamatan``) goes to the office of the complaint's kecamatan,
   found from the location's kecamatan, its kelurahan (village) or its address;
2. keywords in the title and body, matched on normalised and stemmed words (see
   ``lapor.router.text``): the OPD with the most hits; neighbourhood matters (the
   table's territorial keywords, such as "surat pengantar" or "ketua rt") count for the
   office of the complaint's kecamatan, and kelurahan names ("Parit Mayor") are places,
   not keywords; ties go to the OPD the reporter suggested, then to the one mentioned
   first, then to table order;
3. the OPD the reporter suggested, if the registry knows it;
4. the coordinating admin (admin koordinator), who disposes it by hand. Under the No
   Wrong Door Policy every complaint is routed somewhere.

"Not our authority" (Bukan Wewenang): ``decide(complaint, exclude)`` never chooses an
excluded OPD, except the coordinator as the very last resort. When the owner of the
complaint's category is excluded, the complaint is forwarded up a level, to the first
unit of the table's ``escalation`` list for the owner's level that is not excluded too
(a city unit to the provincial government, then to the national ministries). When the
keyword rule's best OPD is excluded, the next best candidate is taken; if none is left,
the complaint is forwarded up a level from that best OPD. After that come the
suggestion and the coordinator, as without exclusions.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from lapor.router.text import normalize, stems
from lapor.shared.events import ComplaintReceived, Location
from lapor.shared.registry import LEVELS as REGISTRY_LEVELS
from lapor.shared.registry import Registry, load_registry

LEVELS = frozenset(REGISTRY_LEVELS)
"""Levels of government (or state-owned enterprise) an OPD can belong to."""

CATEGORY_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
"""Same shape as ``Complaint.category``, so every table category can actually arrive."""

CONFIDENCE_CATEGORY = 0.9
CONFIDENCE_LOCATION = 0.85
CONFIDENCE_KEYWORD_CONFIRMED = 0.7
"""Keywords pointing to the very OPD the reporter suggested."""
CONFIDENCE_KEYWORD = 0.6
CONFIDENCE_ESCALATION = 0.8
"""Forwarded up a level from the owner of the complaint's category, which declined it: the
table's own rule, as certain as the category (and disposed at once at the default
``auto_dispose_confidence``)."""
CONFIDENCE_ESCALATION_KEYWORD = 0.5
"""Forwarded up a level from the OPD the keywords pointed to, which declined it."""
CONFIDENCE_SUGGESTED = 0.5
CONFIDENCE_KEYWORD_TIE = 0.4
"""Keywords tied between OPDs; the one mentioned first was taken."""
CONFIDENCE_FALLBACK = 0.0

_NON_WORD = re.compile(r"[\W_]+")
_TOP_LEVEL = frozenset({"version", "coordinator", "escalation", "territorial", "opd"})
_OPD_FIELDS = frozenset({"code", "categories", "keywords", "kelurahan"})
_FROM_REGISTRY = frozenset({"name", "level", "kecamatan"})
_KECAMATAN_PREFIXES = frozenset({"kecamatan", "kec"})
_PLACE_MARKERS = frozenset({"kecamatan", "kelurahan", "desa", "camat", "lurah"})
_CITY = "pontianak"
_TERRITORIAL = "@territorial"
"""Owner of the territorial keywords: the sub-district office of the complaint's place."""
_PLACE = "@place"
"""Owner of the kelurahan names, matched only so that their words are no keywords."""
_LOCATIVES = frozenset(
    {"di", "depan", "dekat", "samping", "belah", "belakang", "seberang",
     "sekitar", "atas", "bawah", "ujung", "tuju", "arah", "pinggir", "halaman", "kawasan",
     "area"}
)  # fmt: skip
"""Stems of words that make what follows a place: "di depan sekolah", "dekat pasar"."""

LOCATIVE_WEIGHT = 0.5
"""What a keyword right after a place word counts for: "PKL di depan RSUD" is about street
vendors, and the hospital only says where."""


@dataclass(frozen=True)
class Opd:
    """A unit that can receive complaints, with the rules that route to it.

    ``code``, ``name``, ``level``, ``responsible_for`` and ``kecamatan`` come from the OPD
    registry; ``categories``, ``keywords`` and ``kelurahan`` from the routing table.
    """

    code: str
    name: str
    level: str
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    kecamatan: str | None = None
    kelurahan: tuple[str, ...] = ()
    responsible_for: str = ""


@dataclass(frozen=True)
class Decision:
    """Where a complaint goes and why; its fields are those of ``ComplaintRouted``.

    ``ComplaintRouted(**dataclasses.asdict(decision))`` builds the event (the event reads
    ``excluded`` as a list).
    """

    opd: str
    opd_name: str
    rule: str
    reason: str
    confidence: float
    rules_version: str
    excluded: tuple[str, ...] = ()
    """OPDs that declared "not our authority", sorted; none of them was chosen (unless the
    coordinator, as the last resort)."""
    level: str | None = None
    """Level of government of the chosen OPD."""


def _kecamatan_parts(name: str) -> list[str]:
    parts = _NON_WORD.sub(" ", name.lower()).split()
    return parts[1:] if parts and parts[0] in _KECAMATAN_PREFIXES else parts


def _kecamatan_key(name: str) -> str:
    """Case-, space- and punctuation-blind form of a kecamatan name."""
    return "".join(_kecamatan_parts(name))


def _kecamatan_keys(name: str) -> set[str]:
    """Spellings under which a kecamatan is recognized: "Kec. Pontianak Barat", "barat"."""
    parts = _kecamatan_parts(name)
    keys = {"".join(parts)} if parts else set()
    if len(parts) > 1 and parts[0] == _CITY:
        keys.add("".join(parts[1:]))
    return keys


def _place_key(name: str) -> str:
    """Case-, space- and punctuation-blind form of a kelurahan name ("Kel. Mariana" is
    "mariana")."""
    words = normalize(name)
    if len(words) > 1 and words[0] in ("kelurahan", "desa"):
        words = words[1:]
    return "".join(words)


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    keyword: str
    opd: str


@dataclass
class _Candidate:
    opd: Opd
    keywords: list[str]
    hits: float
    first: int
    """Position of the first word of its first hit."""


class RoutingTable:
    """The routing rules of one deployment, validated at load time against the registry.

    Build it with ``load`` (a file, by default the packaged table) or ``from_text``.
    A malformed table, or one naming a unit the registry does not know, raises
    ``ValueError`` rather than misrouting complaints later.
    """

    def __init__(
        self, data: Mapping[str, Any], text: str, registry: Registry | None = None
    ) -> None:
        registry = registry if registry is not None else load_registry()
        unknown = set(data) - _TOP_LEVEL
        if unknown:
            raise ValueError(f"routing table: unknown top-level key(s) {sorted(unknown)}")
        version = data.get("version")
        if not isinstance(version, str) or not version.strip():
            raise ValueError("routing table: 'version' must be a non-empty string")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        self._version = f"{version.strip()}+{digest}"

        entries = data.get("opd")
        if not isinstance(entries, list) or not entries:
            raise ValueError("routing table: at least one [[opd]] entry is required")
        ruled = [_parse_opd(entry, i, registry) for i, entry in enumerate(entries)]
        self._opds: dict[str, Opd] = {}
        for opd in ruled:
            if opd.code in self._opds:
                raise ValueError(f"routing table: OPD code {opd.code!r} appears twice")
            self._opds[opd.code] = opd
        # Units of the registry without rules of their own can still be suggested by a
        # reporter or forwarded to.
        for unit in registry.units:
            if unit.code not in self._opds:
                self._opds[unit.code] = _from_registry(unit.code, registry)
        opds = list(self._opds.values())

        coordinator = data.get("coordinator", registry.coordinator)
        if not isinstance(coordinator, str) or coordinator not in self._opds:
            raise ValueError(
                f"routing table: coordinator {coordinator!r} is not a unit of the OPD registry"
            )
        self._coordinator = self._opds[coordinator]
        self._escalation = _parse_escalation(data.get("escalation", {}), self._opds)

        self._by_category, self._territorial_categories = _index_categories(opds)
        self._offices = _index_offices(opds)
        self._places = _index_places(opds)
        territorial = data.get("territorial", {})
        if not isinstance(territorial, Mapping) or set(territorial) - {"keywords"}:
            raise ValueError("routing table: [territorial] takes only 'keywords'")
        territorial_keywords = _keyword_list(
            territorial.get("keywords", []), "routing table: [territorial] keywords"
        )
        if territorial_keywords and not self._offices:
            raise ValueError("routing table: territorial keywords need sub-district offices")
        self._phrases = _index_keywords(opds, territorial_keywords)
        self._order = {code: i for i, code in enumerate(self._opds)}

    @classmethod
    def load(cls, path: Path | None = None, *, registry: Registry | None = None) -> RoutingTable:
        """Read a table file; without ``path``, the routing_table.toml shipped with the package."""
        if path is None:
            text = files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls.from_text(text, registry=registry)

    @classmethod
    def from_text(cls, text: str, *, registry: Registry | None = None) -> RoutingTable:
        """Parse and validate a table given as TOML text (against the shipped registry by
        default)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"routing table: not valid TOML: {e}") from e
        return cls(data, text, registry)

    @property
    def version(self) -> str:
        """The file's ``version`` plus the text's hash, e.g. ``2026.11.1+ab12cd34``.

        The hash catches an edited table whose version nobody bumped.
        """
        return self._version

    @property
    def coordinator(self) -> Opd:
        """The coordinating admin, who receives whatever no rule routes."""
        return self._coordinator

    @property
    def opds(self) -> dict[str, Opd]:
        """Every OPD by code: the table's in file order, then the registry's other units
        (a copy)."""
        return dict(self._opds)

    def opd(self, code: str) -> Opd | None:
        """The OPD with this code, if the registry has one."""
        return self._opds.get(code)

    def escalation(self, level: str) -> tuple[str, ...]:
        """Where a complaint goes, in order, when a unit of ``level`` declines it."""
        return self._escalation.get(level, ())

    def decide(
        self, complaint: ComplaintReceived, exclude: frozenset[str] = frozenset()
    ) -> Decision:
        """Choose the OPD authorized to act on ``complaint``; never fails to choose one.

        ``exclude`` holds the OPDs that declared the complaint not their authority: none of
        them is chosen, except the coordinator when nothing else is left.
        """
        excluded = tuple(sorted(exclude))
        escalated_from: set[str] = set()

        by_category = self._by_category_rule(complaint)
        if by_category is not None:
            owner, rule, reason, confidence = by_category
            if owner.code not in exclude:
                return self._decision(owner, rule, reason, confidence, excluded)
            escalated_from.add(owner.code)
            forwarded = self._escalate(
                owner, exclude, f"Category '{complaint.category}'", CONFIDENCE_ESCALATION
            )
            if forwarded is not None:
                return self._decision(*forwarded, excluded)

        candidates = self._keyword_candidates(complaint)
        chosen = self._by_keyword_rule(candidates, complaint, exclude)
        if chosen is not None:
            return self._decision(*chosen, excluded)
        if candidates and candidates[0].opd.code not in escalated_from:
            top = candidates[0]
            forwarded = self._escalate(
                top.opd, exclude, f"The keyword '{top.keywords[0]}'", CONFIDENCE_ESCALATION_KEYWORD
            )
            if forwarded is not None:
                return self._decision(*forwarded, excluded)

        suggested = self._opds.get(complaint.suggested_opd) if complaint.suggested_opd else None
        if suggested is not None and suggested.code not in exclude:
            return self._decision(
                suggested,
                "suggested",
                f"No category or keyword rule matched; the reporter suggested {suggested.name}.",
                CONFIDENCE_SUGGESTED,
                excluded,
            )
        return self._fallback(excluded)

    def office_for(self, location: Location | None, text: str = "") -> Opd | None:
        """The sub-district office of a complaint's place: its location's kecamatan, else
        its kelurahan, else a kecamatan or kelurahan named in its address, else one named
        right after "kecamatan", "kelurahan", "camat" or "lurah" in ``text`` (the title and
        body)."""
        if location is not None:
            for name in (location.kecamatan, location.kelurahan):
                if name:
                    office = self._offices.get(_kecamatan_key(name)) or self._places.get(
                        _place_key(name)
                    )
                    if office is not None:
                        return office
            if location.address:
                office = self._place_in(normalize(location.address), anywhere=True)
                if office is not None:
                    return office
        return self._place_in(normalize(text), anywhere=False) if text else None

    def _place_in(self, words: tuple[str, ...], *, anywhere: bool) -> Opd | None:
        # Longest place name first, so "sungai jawi dalam" (Barat) is not "sungai jawi"
        # (Kota). Outside an address a place counts only right after a marker word.
        for i in range(len(words)):
            if not anywhere and (i == 0 or words[i - 1] not in _PLACE_MARKERS):
                continue
            for n in (3, 2, 1):
                if i + n <= len(words):
                    office = self._places.get("".join(words[i : i + n]))
                    if office is not None:
                        return office
        return None

    def _decision(
        self, opd: Opd, rule: str, reason: str, confidence: float, excluded: tuple[str, ...]
    ) -> Decision:
        if excluded:
            names = ", ".join(self._name(code) for code in excluded)
            reason = f"{reason} Declared not their authority: {names}."
        return Decision(
            opd=opd.code,
            opd_name=opd.name,
            rule=rule,
            reason=reason,
            confidence=confidence,
            rules_version=self._version,
            excluded=excluded,
            level=opd.level,
        )

    def _name(self, code: str) -> str:
        opd = self._opds.get(code)
        return opd.name if opd is not None else code

    def _by_category_rule(self, complaint: ComplaintReceived) -> tuple[Opd, str, str, float] | None:
        category = complaint.category
        if not category:
            return None
        owner = self._by_category.get(category)
        if owner is not None:
            return (
                owner,
                f"category:{category}",
                f"Category '{category}' is handled by {owner.name}.",
                CONFIDENCE_CATEGORY,
            )
        if category not in self._territorial_categories:
            return None
        office = self.office_for(complaint.location, f"{complaint.title}\n{complaint.body}")
        if office is None or category not in office.categories:
            # Without a known kecamatan a territorial category cannot pick an office;
            # the later rules still can.
            return None
        return (
            office,
            f"location:{office.kecamatan}",
            f"Category '{category}' in kecamatan {office.kecamatan} is handled by {office.name}.",
            CONFIDENCE_LOCATION,
        )

    def _keyword_candidates(self, complaint: ComplaintReceived) -> list[_Candidate]:
        """OPDs whose keywords the complaint mentions, most hits first.

        Equal hits go to the OPD the reporter suggested, then to the one mentioned first
        (the title comes first, and Indonesian names the subject before the place: "PKL
        di depan RSUD", "sampah di depan kantor camat"), then to table order.
        """
        words = stems(f"{complaint.title}\n{complaint.body}")
        found: dict[str, _Candidate] = {}
        office: Opd | None = None
        office_known = False
        for position, phrase in self._match(words):
            code = phrase.opd
            if code == _PLACE:
                continue
            if code == _TERRITORIAL:
                if not office_known:
                    office = self.office_for(
                        complaint.location, f"{complaint.title}\n{complaint.body}"
                    )
                    office_known = True
                if office is None:
                    continue  # a neighbourhood matter, but whose neighbourhood?
                code = office.code
            candidate = found.get(code)
            if candidate is None:
                candidate = found[code] = _Candidate(self._opds[code], [], 0, position)
            after_place_word = position > 0 and words[position - 1] in _LOCATIVES
            candidate.hits += LOCATIVE_WEIGHT if after_place_word else 1
            if phrase.keyword not in candidate.keywords:
                candidate.keywords.append(phrase.keyword)
        suggested = complaint.suggested_opd
        return sorted(
            found.values(),
            key=lambda c: (-c.hits, c.opd.code != suggested, c.first, self._order[c.opd.code]),
        )

    def _by_keyword_rule(
        self, candidates: list[_Candidate], complaint: ComplaintReceived, exclude: frozenset[str]
    ) -> tuple[Opd, str, str, float] | None:
        remaining = [c for c in candidates if c.opd.code not in exclude]
        if not remaining:
            return None
        best = remaining[0]
        opd = best.opd
        quoted = [f"'{k}'" for k in best.keywords[:3]]
        mentions = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
        reason = f"The complaint mentions {mentions}, which {opd.name} handles."
        if opd.level == "subdistrict" and opd.kecamatan:
            reason = (
                f"The complaint mentions {mentions}, a neighbourhood matter of kecamatan "
                f"{opd.kecamatan}, which {opd.name} handles."
            )
        tied = len(remaining) > 1 and remaining[1].hits == best.hits
        if opd.code == complaint.suggested_opd:
            confidence = CONFIDENCE_KEYWORD_CONFIRMED
            reason = f"{reason} The reporter suggested it too."
        elif tied:
            confidence = CONFIDENCE_KEYWORD_TIE
            reason = (
                f"{reason} {remaining[1].opd.name} is mentioned as often; the one mentioned "
                "first was chosen."
            )
        else:
            confidence = CONFIDENCE_KEYWORD
        return opd, f"keyword:{best.keywords[0]}", reason, confidence

    def _escalate(
        self, owner: Opd, exclude: frozenset[str], subject: str, confidence: float
    ) -> tuple[Opd, str, str, float] | None:
        """Forward up a level from ``owner``, who declined: the first unit of its level's
        escalation list that did not decline too."""
        for code in self.escalation(owner.level):
            if code in exclude or code == owner.code:
                continue
            target = self._opds[code]
            return (
                target,
                f"escalation:{owner.code}",
                f"{subject} points to {owner.name}, which declared it not its authority; "
                f"forwarded up a level to {target.name}.",
                confidence,
            )
        return None

    def _match(self, text: tuple[str, ...]) -> Iterable[tuple[int, _Phrase]]:
        # Greedy longest match from the left: the words of "lampu jalan" are spent on the
        # street-light phrase and cannot count again as a road keyword, and those of the
        # place "Parit Mayor" on the place, not on the drainage keyword "parit".
        i = 0
        while i < len(text):
            for phrase in self._phrases.get(text[i], ()):
                n = len(phrase.words)
                if text[i : i + n] == phrase.words:
                    yield i, phrase
                    i += n
                    break
            else:
                i += 1

    def _fallback(self, excluded: tuple[str, ...]) -> Decision:
        opd = self._coordinator
        return self._decision(
            opd,
            "fallback",
            f"No routing rule matched, so {opd.name} (the coordinating admin) will dispose "
            "it manually.",
            CONFIDENCE_FALLBACK,
            excluded,
        )


def _from_registry(code: str, registry: Registry) -> Opd:
    unit = registry.get(code)
    assert unit is not None
    return Opd(
        code=unit.code,
        name=unit.name,
        level=unit.level,
        kecamatan=unit.kecamatan,
        responsible_for=unit.responsible_for,
    )


def _parse_opd(entry: Any, index: int, registry: Registry) -> Opd:
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
    if not isinstance(code, str) or code not in registry:
        raise ValueError(f"{where}: code must be a unit of the OPD registry")
    unit = _from_registry(code, registry)
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
        if not _place_key(name):
            raise ValueError(f"{where}: kelurahan {name!r} has no words")
    return Opd(
        code=unit.code,
        name=unit.name,
        level=unit.level,
        categories=categories,
        keywords=keywords,
        kecamatan=unit.kecamatan,
        kelurahan=kelurahan,
        responsible_for=unit.responsible_for,
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
        if not stems(keyword):
            raise ValueError(f"{where}: keyword {keyword!r} has no words")
    return keywords


def _parse_escalation(value: Any, opds: Mapping[str, Opd]) -> dict[str, tuple[str, ...]]:
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
            if code not in opds:
                raise ValueError(
                    f"routing table: escalation.{level}: {code!r} is not a unit of the OPD registry"
                )
        chains[level] = chain
    return chains


def _index_categories(opds: list[Opd]) -> tuple[dict[str, Opd], frozenset[str]]:
    """Category owners, checking that each category has exactly one.

    A category held only by sub-district offices is territorial: it has one owner per
    kecamatan, chosen by the complaint's location.
    """
    holders: dict[str, list[Opd]] = {}
    for opd in opds:
        for category in opd.categories:
            holders.setdefault(category, []).append(opd)
    by_category: dict[str, Opd] = {}
    territorial: set[str] = set()
    for category, owners in holders.items():
        if all(o.level == "subdistrict" for o in owners):
            seen: dict[str, Opd] = {}
            for office in owners:
                for key in _kecamatan_keys(office.kecamatan or ""):
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


def _index_offices(opds: list[Opd]) -> dict[str, Opd]:
    """Sub-district offices by every spelling of their kecamatan."""
    offices: dict[str, Opd] = {}
    for opd in opds:
        if opd.level != "subdistrict" or not opd.kecamatan:
            continue
        for key in _kecamatan_keys(opd.kecamatan):
            other = offices.get(key)
            if other is not None:
                raise ValueError(
                    f"routing table: {other.code!r} and {opd.code!r} have the same kecamatan"
                )
            offices[key] = opd
    return offices


def _index_places(opds: list[Opd]) -> dict[str, Opd]:
    """Sub-district offices by their kelurahan and by their kecamatan's full name."""
    places: dict[str, Opd] = {}
    for opd in opds:
        names = [*opd.kelurahan, *([opd.kecamatan] if opd.kecamatan else [])]
        for name in names:
            key = _place_key(name)
            other = places.get(key)
            if other is not None and other.code != opd.code:
                raise ValueError(
                    f"routing table: kelurahan {name!r} belongs to both {other.code!r} and "
                    f"{opd.code!r}"
                )
            places[key] = opd
    return places


def _index_keywords(
    opds: list[Opd], territorial: tuple[str, ...]
) -> dict[str, tuple[_Phrase, ...]]:
    """Keyword phrases (stemmed) by first word, longest first, checking each has one owner.

    Two spellings of one keyword that stem alike ("jalan berlubang", "jln berlubang") are
    one phrase, named after the first.
    """
    owners: dict[tuple[str, ...], _Phrase] = {}
    owned = [(opd.code, keyword) for opd in opds for keyword in opd.keywords]
    owned += [(_TERRITORIAL, keyword) for keyword in territorial]
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
        owners[key] = _Phrase(words=key, keyword=keyword, opd=code)
    for opd in opds:
        for name in opd.kelurahan:
            key = stems(name)
            if key not in owners:  # a keyword spelled like a place stays a keyword
                owners[key] = _Phrase(words=key, keyword=name, opd=_PLACE)
    index: dict[str, list[_Phrase]] = {}
    for phrase in owners.values():
        index.setdefault(phrase.words[0], []).append(phrase)
    return {
        first: tuple(sorted(phrases, key=lambda p: -len(p.words)))
        for first, phrases in index.items()
    }


def _owner(code: str) -> str:
    return "[territorial]" if code == _TERRITORIAL else repr(code)
