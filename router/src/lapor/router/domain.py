"""Routing rules: which OPD is authorized to act on a complaint (disposisi).

The rules are data (``routing_table.toml``); the units they route to, with their names
and levels of government, are the shared OPD registry (``lapor.shared.registry``).
``lapor.router.table`` reads and checks both once, into an indexed table; this module
applies its rules in a fixed order, so every decision can be explained in words and
reproduced from the table version it names. Pure: it does no I/O (``RoutingTable.load``
leaves reading the file to ``lapor.router.table``).

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

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lapor.router.places import kecamatan_key, place_key
from lapor.router.table import PLACE, TERRITORIAL, IndexedTable, Phrase, parse_table, read_table
from lapor.router.text import normalize, stems
from lapor.router.unit_rules import UnitRules
from lapor.shared.events import ComplaintReceived, Location
from lapor.shared.registry import Registry

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

_PLACE_MARKERS = frozenset({"kecamatan", "kelurahan", "desa", "camat", "lurah"})
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


_Choice = tuple[UnitRules, str, str, float]
"""A rule's pick: the unit, the rule's name, the reason in words, the confidence."""


@dataclass
class _Candidate:
    opd: UnitRules
    keywords: list[str]
    hits: float
    first: int
    """Position of the first word of its first hit."""


class RoutingTable:
    """The routing rules of one deployment, and the decisions they make.

    Build it with ``load`` (a file, by default the packaged table) or ``from_text``, which
    read and check the table with ``lapor.router.table``: a malformed table, or one naming
    a unit the registry does not know, raises ``ValueError`` rather than misrouting
    complaints later. Or give it an ``IndexedTable`` read already.
    """

    def __init__(self, table: IndexedTable) -> None:
        self._table = table

    @classmethod
    def load(cls, path: Path | None = None, *, registry: Registry | None = None) -> RoutingTable:
        """Read a table file; without ``path``, the routing_table.toml shipped with the package."""
        return cls(read_table(path, registry=registry))

    @classmethod
    def from_text(cls, text: str, *, registry: Registry | None = None) -> RoutingTable:
        """Parse and validate a table given as TOML text (against the shipped registry by
        default)."""
        return cls(parse_table(text, registry=registry))

    @property
    def version(self) -> str:
        """The file's ``version`` plus the text's hash, e.g. ``2026.11.1+ab12cd34``.

        The hash catches an edited table whose version nobody bumped.
        """
        return self._table.version

    @property
    def coordinator(self) -> UnitRules:
        """The coordinating admin (its routing rules), who receives whatever no rule routes."""
        return self._table.coordinator

    @property
    def opds(self) -> dict[str, UnitRules]:
        """Every unit's routing rules by code: the table's units in file order, then the
        registry's other units, which have none (a copy)."""
        return dict(self._table.units)

    def opd(self, code: str) -> UnitRules | None:
        """The routing rules of the unit with this code, if the registry has one."""
        return self._table.units.get(code)

    def escalation(self, level: str) -> tuple[str, ...]:
        """Where a complaint goes, in order, when a unit of ``level`` declines it."""
        return self._table.escalation.get(level, ())

    def decide(
        self,
        complaint: ComplaintReceived,
        exclude: frozenset[str] = frozenset(),
        referred: tuple[str, ...] = (),
    ) -> Decision:
        """Choose the OPD authorized to act on ``complaint``; never fails to choose one.

        ``exclude`` holds the OPDs that declared the complaint not their authority: none of
        them is chosen, except the coordinator when nothing else is left. ``referred``
        holds the units those officers named as authorized instead, latest first; the
        rules alone do not weigh them (``lapor.router.routing`` does).
        """
        del referred
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

        units = self._table.units
        suggested = units.get(complaint.suggested_opd) if complaint.suggested_opd else None
        if suggested is not None and suggested.code not in exclude:
            return self._decision(
                suggested,
                "suggested",
                f"No category or keyword rule matched; the reporter suggested {suggested.name}.",
                CONFIDENCE_SUGGESTED,
                excluded,
            )
        return self._fallback(excluded)

    def office_for(self, location: Location | None, text: str = "") -> UnitRules | None:
        """The sub-district office of a complaint's place: its location's kecamatan, else
        its kelurahan, else a kecamatan or kelurahan named in its address, else one named
        right after "kecamatan", "kelurahan", "camat" or "lurah" in ``text`` (the title and
        body)."""
        if location is not None:
            for name in (location.kecamatan, location.kelurahan):
                if name:
                    office = self._table.offices.get(kecamatan_key(name)) or self._table.places.get(
                        place_key(name)
                    )
                    if office is not None:
                        return office
            if location.address:
                office = self._place_in(normalize(location.address), anywhere=True)
                if office is not None:
                    return office
        return self._place_in(normalize(text), anywhere=False) if text else None

    def _place_in(self, words: tuple[str, ...], *, anywhere: bool) -> UnitRules | None:
        # Longest place name first, so "sungai jawi dalam" (Barat) is not "sungai jawi"
        # (Kota). Outside an address a place counts only right after a marker word.
        for i in range(len(words)):
            if not anywhere and (i == 0 or words[i - 1] not in _PLACE_MARKERS):
                continue
            for n in (3, 2, 1):
                if i + n <= len(words):
                    office = self._table.places.get("".join(words[i : i + n]))
                    if office is not None:
                        return office
        return None

    def _decision(
        self, opd: UnitRules, rule: str, reason: str, confidence: float, excluded: tuple[str, ...]
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
            rules_version=self._table.version,
            excluded=excluded,
            level=opd.level,
        )

    def _name(self, code: str) -> str:
        opd = self._table.units.get(code)
        return opd.name if opd is not None else code

    def _by_category_rule(self, complaint: ComplaintReceived) -> _Choice | None:
        category = complaint.category
        if not category:
            return None
        owner = self._table.by_category.get(category)
        if owner is not None:
            return (
                owner,
                f"category:{category}",
                f"Category '{category}' is handled by {owner.name}.",
                CONFIDENCE_CATEGORY,
            )
        if category not in self._table.territorial_categories:
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
        office: UnitRules | None = None
        office_known = False
        for position, phrase in self._match(words):
            code = phrase.opd
            if code == PLACE:
                continue
            if code == TERRITORIAL:
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
                candidate = found[code] = _Candidate(self._table.units[code], [], 0, position)
            after_place_word = position > 0 and words[position - 1] in _LOCATIVES
            candidate.hits += LOCATIVE_WEIGHT if after_place_word else 1
            if phrase.keyword not in candidate.keywords:
                candidate.keywords.append(phrase.keyword)
        suggested = complaint.suggested_opd
        order = self._table.order
        return sorted(
            found.values(),
            key=lambda c: (-c.hits, c.opd.code != suggested, c.first, order[c.opd.code]),
        )

    def _by_keyword_rule(
        self, candidates: list[_Candidate], complaint: ComplaintReceived, exclude: frozenset[str]
    ) -> _Choice | None:
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
        self, owner: UnitRules, exclude: frozenset[str], subject: str, confidence: float
    ) -> _Choice | None:
        """Forward up a level from ``owner``, who declined: the first unit of its level's
        escalation list that did not decline too."""
        for code in self.escalation(owner.level):
            if code in exclude or code == owner.code:
                continue
            target = self._table.units[code]
            return (
                target,
                f"escalation:{owner.code}",
                f"{subject} points to {owner.name}, which declared it not its authority; "
                f"forwarded up a level to {target.name}.",
                confidence,
            )
        return None

    def _match(self, text: tuple[str, ...]) -> Iterable[tuple[int, Phrase]]:
        # Greedy longest match from the left: the words of "lampu jalan" are spent on the
        # street-light phrase and cannot count again as a road keyword, and those of the
        # place "Parit Mayor" on the place, not on the drainage keyword "parit".
        i = 0
        while i < len(text):
            for phrase in self._table.phrases.get(text[i], ()):
                n = len(phrase.words)
                if text[i : i + n] == phrase.words:
                    yield i, phrase
                    i += n
                    break
            else:
                i += 1

    def _fallback(self, excluded: tuple[str, ...]) -> Decision:
        opd = self._table.coordinator
        return self._decision(
            opd,
            "fallback",
            f"No routing rule matched, so {opd.name} (the coordinating admin) will dispose "
            "it manually.",
            CONFIDENCE_FALLBACK,
            excluded,
        )
