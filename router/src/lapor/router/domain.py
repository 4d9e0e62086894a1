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
from lapor.router.text import NO_BREAK, SENTENCE, normalize, topic_words
from lapor.router.unit_rules import UnitRules
from lapor.shared.events import ComplaintReceived, Location
from lapor.shared.registry import Registry

CONFIDENCE_CATEGORY = 0.9
CONFIDENCE_LOCATION = 0.85
CONFIDENCE_KEYWORD_CONFIRMED = 0.7
"""Keywords pointing to the very OPD the reporter suggested."""
CONFIDENCE_KEYWORD = 0.6
CONFIDENCE_ESCALATION = 0.9
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
"""What a keyword in a place phrase counts for: "PKL di depan RSUD" is about street
vendors, and the hospital only says where. A place phrase is what follows a place word,
up to the next punctuation, a word that ends it (``_PLACE_ENDS``) or ``PLACE_WORDS``
words: "di depan gedung sekolah negeri"."""
PLACE_TAIL_WEIGHT = 0.75
"""What a keyword further into a place phrase than its first word counts for: less than
a keyword outside it, but more than its first word, since where a place ends without
punctuation is only guessed."""
PLACE_WORDS = 3
"""The most words after a place word that are still the place."""
_PLACE_ENDS = frozenset(
    {"yang", "dan", "atau", "tapi", "tetapi", "namun", "karena", "sehingga", "agar",
     "supaya", "untuk", "sudah", "belum", "tidak", "bukan", "masih", "sedang", "akan",
     "telah", "sangat", "sering", "selalu", "mohon", "tolong", "ada", "sejak", "tiap",
     "saat", "ketika", "jadi", "juga", "lagi", "hingga", "sampai", "malah", "bahkan"}
)  # fmt: skip
"""Stems that end a place phrase: "di depan sekolah yang rusak", "di gang sudah sebulan"."""
_PLACE_CLOSERS = frozenset(
    {"saya", "kami", "kita", "mereka", "dia", "ini", "itu", "sebut", "sana", "sini", "situ"}
)
"""Stems that close the place phrase they are the last word of: "di depan rumah saya",
"di sekolah tersebut"."""

WINDOW_WEIGHT = 0.8
"""What a keyword of several words counts for when its words are not written as in the
table but in another order or with other words between ("kerusakan jalan", "jalan di depan
rumah saya rusak"): a little less than the phrase itself."""
WINDOW_GAP = 4
"""The most other words between the first and the last word of such a keyword. Its words
in another order than the table's must not have a place word between them: "sakit di
rumah" is no "rumah sakit"."""


@dataclass(frozen=True)
class Candidate:
    """One of the text classifier's most probable units for a complaint."""

    opd: str
    probability: float


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
    candidates: tuple[Candidate, ...] = ()
    """The text classifier's top units with their probabilities (none without a model)."""
    model_version: str | None = None
    """The version of the model that weighed in, if one did."""


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

    Build it with ``load`` (a file, by default the packaged table of the deployment) or
    ``from_text``, which read and check the table with ``lapor.router.table``: a malformed
    table, or one naming a unit the registry does not know, raises ``ValueError`` rather
    than misrouting complaints later. Or give it an ``IndexedTable`` read already.
    """

    def __init__(self, table: IndexedTable) -> None:
        self._table = table

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        registry: Registry | None = None,
        deployment: str | None = None,
    ) -> RoutingTable:
        """Read a table file; without ``path``, the packaged table of ``deployment``
        (``kota_pontianak``: routing_table.toml; ``kabupaten_kubu_raya``...), by default the
        one ``LAPOR_DEPLOYMENT`` names, else ``kota_pontianak``. Checked against
        ``registry``, by default that deployment's packaged registry."""
        return cls(read_table(path, registry=registry, deployment=deployment))

    @classmethod
    def from_text(
        cls, text: str, *, registry: Registry | None = None, deployment: str | None = None
    ) -> RoutingTable:
        """Parse and validate a table given as TOML text (against ``registry``, by default
        the packaged registry of ``deployment``, as for ``load``)."""
        return cls(parse_table(text, registry=registry, deployment=deployment))

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

    def category_owner(self, complaint: ComplaintReceived) -> tuple[UnitRules, str] | None:
        """The unit the complaint's category belongs to (a sub-district office by place),
        and the rule's name, e.g. ``category:jalan``; None without a usable category."""
        choice = self._by_category_rule(complaint)
        return (choice[0], choice[1]) if choice is not None else None

    def keyword_candidates(
        self, complaint: ComplaintReceived
    ) -> list[tuple[UnitRules, str, float]]:
        """Units whose keywords the complaint mentions, best first: the unit, its first
        keyword, and its hits (a keyword after a place word counts less)."""
        return [(c.opd, c.keywords[0], c.hits) for c in self._keyword_candidates(complaint)]

    def office_for(self, location: Location | None, text: str = "") -> UnitRules | None:
        """The sub-district office of a complaint's place: its location's kecamatan, else
        its kelurahan, else a kecamatan or kelurahan named in its address, else one named
        right after "kecamatan", "kelurahan", "desa", "camat" or "lurah" in ``text`` (the
        title and body). Villages (desa) are the kelurahan of a regency's offices."""
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
        # (Kota). Outside an address a place counts only right after a marker word. The
        # deployment's own name is no place in it: "Kubu Raya" is not the kecamatan Kubu.
        area = self._table.area
        for i in range(len(words)):
            if not anywhere and (i == 0 or words[i - 1] not in _PLACE_MARKERS):
                continue
            shortest = len(area) + 1 if area and words[i : i + len(area)] == area else 1
            for n in (3, 2, 1):
                if shortest <= n and i + n <= len(words):
                    office = self._table.places.get("".join(words[i : i + n]))
                    if office is not None:
                        return office
        return None

    def decision(
        self, opd: UnitRules, rule: str, reason: str, confidence: float, exclude: frozenset[str]
    ) -> Decision:
        """A decision for ``opd`` by this table, naming the units that declined."""
        return self._decision(opd, rule, reason, confidence, tuple(sorted(exclude)))

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
        words, breaks = topic_words(f"{complaint.title}\n{complaint.body}")
        place_weights = _place_weights(words, breaks)
        found: dict[str, _Candidate] = {}
        office: UnitRules | None = None
        office_known = False
        for position, phrase, weight in self._match(words, breaks):
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
            weight *= place_weights[position]
            # Rounded, so that equal hits compare equal however they were added up.
            candidate.hits = round(candidate.hits + weight, 9)
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
        """Forward up a level from ``owner``, who declined: the first unit of its own
        escalation list (else its level's) that did not decline too."""
        for code in owner.escalation or self.escalation(owner.level):
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

    def _match(
        self, text: tuple[str, ...], breaks: tuple[int, ...] | None = None
    ) -> Iterable[tuple[int, Phrase, float]]:
        """The keywords in ``text`` (stems; ``breaks`` the pause before each, see
        ``topic_words``), in order of their first word: its position, the phrase, and what
        the match counts for (1, or ``WINDOW_WEIGHT`` for scattered words)."""
        n = len(text)
        if breaks is None:
            breaks = (NO_BREAK,) * n
        spent = [False] * n
        found: list[tuple[int, Phrase, float]] = []
        # Greedy longest match from the left: the words of "lampu jalan" are spent on the
        # street-light phrase and cannot count again as a road keyword, and those of the
        # place "Parit Mayor" on the place, not on the drainage keyword "parit". A phrase
        # does not run over the end of a sentence.
        phrases = self._table.phrases
        i = 0
        while i < n:
            for phrase in phrases.get(text[i], ()):
                m = len(phrase.words)
                if text[i : i + m] == phrase.words and (
                    m == 1 or SENTENCE not in breaks[i + 1 : i + m]
                ):
                    found.append((i, phrase, 1.0))
                    spent[i : i + m] = [True] * m
                    i += m
                    break
            else:
                i += 1
        # Then the words left over: a keyword of several words whose words stand within
        # WINDOW_GAP words of each other in one sentence, in any order ("kerusakan jalan"
        # is "jalan rusak"), each word spent once, longest keyword first.
        scattered = self._table.scattered
        for i in range(n):
            if spent[i]:
                continue
            candidates = scattered.get(text[i])
            if not candidates:
                continue
            # A quick first look: the words within reach of the longest candidate.
            ahead = set(text[i : i + len(candidates[0].words) + WINDOW_GAP])
            for phrase in candidates:
                if not ahead.issuperset(phrase.words):
                    continue
                taken = _scattered_at(text, breaks, spent, i, phrase.words)
                if taken is not None:
                    found.append((i, phrase, WINDOW_WEIGHT))
                    for j in taken:
                        spent[j] = True
                    break
        found.sort(key=lambda match: match[0])
        return found

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


def _scattered_at(
    text: tuple[str, ...],
    breaks: tuple[int, ...],
    spent: list[bool],
    i: int,
    words: tuple[str, ...],
) -> list[int] | None:
    """Positions of ``words`` in any order, the first at ``i``, the others unspent, after
    it in the same sentence and within ``WINDOW_GAP`` other words; None if they are not."""
    wanted = list(words)
    wanted.remove(text[i])
    taken = [i]
    last = min(len(text), i + len(words) + WINDOW_GAP)
    for j in range(i + 1, last):
        if breaks[j] == SENTENCE:
            return None
        if not spent[j] and text[j] in wanted:
            wanted.remove(text[j])
            taken.append(j)
            if not wanted:
                break
    else:
        return None
    if tuple(text[j] for j in taken) != words and any(
        text[j] in _LOCATIVES and j not in taken for j in range(i + 1, taken[-1])
    ):
        return None  # "sakit di rumah": something at a place, not the keyword
    return taken


def _place_weights(words: tuple[str, ...], breaks: tuple[int, ...]) -> list[float]:
    """For each word, what a keyword starting there counts for as part of a place phrase:
    ``LOCATIVE_WEIGHT`` right after a place word ("di", "depan", "dekat"...),
    ``PLACE_TAIL_WEIGHT`` for the rest of the ``PLACE_WORDS`` words after it, in the same
    clause and before a word that ends the phrase; 1 outside a place phrase."""
    weights = [1.0] * len(words)
    left = 0
    for j, word in enumerate(words):
        if breaks[j] or word in _PLACE_ENDS:
            left = 0
        if left:
            weights[j] = LOCATIVE_WEIGHT if left == PLACE_WORDS else PLACE_TAIL_WEIGHT
        if word in _LOCATIVES:
            left = PLACE_WORDS
        elif word in _PLACE_CLOSERS:
            left = 0
        elif left:
            left -= 1
    return weights
