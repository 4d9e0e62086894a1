"""Routing rules: which OPD is authorized to act on a complaint (disposisi).

The rules are data (``routing_table.toml``); this module reads them once and applies
them in a fixed order, so every decision can be explained in words and reproduced from
the table version it names. Pure: apart from reading the table in ``RoutingTable.load``
nothing here does I/O.

Decision order (first match wins):

1. the complaint's category: the OPD that owns it; a category owned by sub-district
   offices (``pelayanan_kecamatan``) goes to the office of the complaint's kecamatan;
2. keywords in the title and body: the OPD with the most hits;
3. the OPD the reporter suggested, if the table knows it;
4. the coordinating admin (admin koordinator), who disposes it by hand. Under the No
   Wrong Door Policy every complaint is routed somewhere.
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

from lapor.shared.events import OPD_CODE, ComplaintReceived

LEVELS = frozenset({"city", "subdistrict", "province", "national", "soe"})
"""Levels of government (or state-owned enterprise) an OPD can belong to."""

CATEGORY_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
"""Same shape as ``Complaint.category``, so every table category can actually arrive."""

CONFIDENCE_CATEGORY = 0.9
CONFIDENCE_LOCATION = 0.85
CONFIDENCE_KEYWORD = 0.6
CONFIDENCE_SUGGESTED = 0.5
CONFIDENCE_FALLBACK = 0.0

_OPD_CODE = re.compile(OPD_CODE)
_NON_WORD = re.compile(r"[\W_]+")
_OPD_FIELDS = frozenset({"code", "name", "level", "categories", "keywords", "kecamatan"})
_KECAMATAN_PREFIXES = frozenset({"kecamatan", "kec"})
_CITY = "pontianak"


@dataclass(frozen=True)
class Opd:
    """A unit that can receive complaints: a dinas, badan, kecamatan, or an outside body."""

    code: str
    name: str
    level: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    kecamatan: str | None = None


@dataclass(frozen=True)
class Decision:
    """Where a complaint goes and why; its fields are those of ``ComplaintRouted``."""

    opd: str
    opd_name: str
    rule: str
    reason: str
    confidence: float
    rules_version: str


def words(text: str) -> tuple[str, ...]:
    """Lowercased words of ``text`` with punctuation removed, for keyword matching.

    The enclitic ``-nya`` is dropped ("sampahnya" is "sampah"): Indonesian attaches it to
    almost any noun, and without this most complaints would miss their keywords.
    """
    return tuple(_strip_nya(w) for w in _NON_WORD.sub(" ", text.lower()).split())


def _strip_nya(word: str) -> str:
    # Short words ending in -nya are roots ("tanya", "hanya", "punya"), not clitics.
    return word[:-3] if word.endswith("nya") and len(word) >= 6 else word


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


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    keyword: str
    opd: str


class RoutingTable:
    """The routing rules of one deployment, validated at load time.

    Build it with ``load`` (a file, by default the packaged table) or ``from_text``.
    A malformed table raises ``ValueError`` rather than misrouting complaints later.
    """

    def __init__(self, data: Mapping[str, Any], text: str) -> None:
        version = data.get("version")
        if not isinstance(version, str) or not version.strip():
            raise ValueError("routing table: 'version' must be a non-empty string")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        self._version = f"{version.strip()}+{digest}"

        entries = data.get("opd")
        if not isinstance(entries, list) or not entries:
            raise ValueError("routing table: at least one [[opd]] entry is required")
        opds = [_parse_opd(entry, i) for i, entry in enumerate(entries)]
        self._opds: dict[str, Opd] = {}
        for opd in opds:
            if opd.code in self._opds:
                raise ValueError(f"routing table: OPD code {opd.code!r} appears twice")
            self._opds[opd.code] = opd

        coordinator = data.get("coordinator")
        if not isinstance(coordinator, str) or coordinator not in self._opds:
            raise ValueError(
                f"routing table: coordinator {coordinator!r} is not one of the [[opd]] codes"
            )
        self._coordinator = self._opds[coordinator]

        self._by_category, self._by_kecamatan = _index_categories(opds)
        self._phrases = _index_keywords(opds)
        self._order = {code: i for i, code in enumerate(self._opds)}

    @classmethod
    def load(cls, path: Path | None = None) -> RoutingTable:
        """Read a table file; without ``path``, the routing_table.toml shipped with the package."""
        if path is None:
            text = files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls.from_text(text)

    @classmethod
    def from_text(cls, text: str) -> RoutingTable:
        """Parse and validate a table given as TOML text."""
        return cls(tomllib.loads(text), text)

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
        """Every OPD by code, in file order (a copy)."""
        return dict(self._opds)

    def opd(self, code: str) -> Opd | None:
        """The OPD with this code, if the table has one."""
        return self._opds.get(code)

    def decide(self, complaint: ComplaintReceived) -> Decision:
        """Choose the OPD authorized to act on ``complaint``; never fails to choose one."""
        return (
            self._by_category_rule(complaint)
            or self._by_keyword_rule(complaint)
            or self._by_suggestion_rule(complaint)
            or self._fallback()
        )

    def _decision(self, opd: Opd, rule: str, reason: str, confidence: float) -> Decision:
        return Decision(
            opd=opd.code,
            opd_name=opd.name,
            rule=rule,
            reason=reason,
            confidence=confidence,
            rules_version=self._version,
        )

    def _by_category_rule(self, complaint: ComplaintReceived) -> Decision | None:
        category = complaint.category
        if not category:
            return None
        owner = self._by_category.get(category)
        if owner is not None:
            return self._decision(
                owner,
                f"category:{category}",
                f"Category '{category}' is handled by {owner.name}.",
                CONFIDENCE_CATEGORY,
            )
        offices = self._by_kecamatan.get(category)
        kecamatan = complaint.location.kecamatan if complaint.location else None
        if offices is None or not kecamatan:
            # Without a known kecamatan a territorial category cannot pick an office;
            # the later rules still can.
            return None
        office = offices.get(_kecamatan_key(kecamatan))
        if office is None:
            return None
        return self._decision(
            office,
            f"location:{office.kecamatan}",
            f"Category '{category}' in kecamatan {office.kecamatan} is handled by {office.name}.",
            CONFIDENCE_LOCATION,
        )

    def _by_keyword_rule(self, complaint: ComplaintReceived) -> Decision | None:
        hits: dict[str, list[str]] = {}
        for phrase in self._match(words(f"{complaint.title}\n{complaint.body}")):
            hits.setdefault(phrase.opd, []).append(phrase.keyword)
        if not hits:
            return None
        code = min(hits, key=lambda c: (-len(hits[c]), self._order[c]))
        opd = self._opds[code]
        matched = list(dict.fromkeys(hits[code]))
        quoted = [f"'{k}'" for k in matched[:3]]
        mentions = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
        return self._decision(
            opd,
            f"keyword:{matched[0]}",
            f"The complaint mentions {mentions}, which {opd.name} handles.",
            CONFIDENCE_KEYWORD,
        )

    def _match(self, text: tuple[str, ...]) -> Iterable[_Phrase]:
        # Greedy longest match from the left: the words of "lampu jln" are spent on the
        # street-light phrase and cannot count again as a road keyword.
        i = 0
        while i < len(text):
            for phrase in self._phrases.get(text[i], ()):
                n = len(phrase.words)
                if text[i : i + n] == phrase.words:
                    yield phrase
                    i += n
                    break
            else:
                i += 1

    def _by_suggestion_rule(self, complaint: ComplaintReceived) -> Decision | None:
        opd = self._opds.get(complaint.suggested_opd) if complaint.suggested_opd else None
        if opd is None:
            return None
        return self._decision(
            opd,
            "suggested",
            f"No category or keyword rule matched; the reporter suggested {opd.name}.",
            CONFIDENCE_SUGGESTED,
        )

    def _fallback(self) -> Decision:
        opd = self._coordinator
        return self._decision(
            opd,
            "fallback",
            f"No routing rule matched, so {opd.name} (the coordinating admin) will dispose "
            "it manually.",
            CONFIDENCE_FALLBACK,
        )


def _parse_opd(entry: Any, index: int) -> Opd:
    if not isinstance(entry, Mapping):
        raise ValueError(f"routing table: [[opd]] #{index + 1} is not a table")
    code = entry.get("code")
    where = f"routing table: OPD {code!r}" if code else f"routing table: [[opd]] #{index + 1}"
    unknown = set(entry) - _OPD_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    if not isinstance(code, str) or not _OPD_CODE.match(code):
        raise ValueError(f"{where}: code must match {OPD_CODE}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: name must be a non-empty string")
    level = entry.get("level")
    if level not in LEVELS:
        raise ValueError(f"{where}: level {level!r} is not one of {sorted(LEVELS)}")
    kecamatan = entry.get("kecamatan")
    if (level == "subdistrict") != (kecamatan is not None):
        raise ValueError(f"{where}: exactly the subdistrict offices have a kecamatan")
    if kecamatan is not None and (not isinstance(kecamatan, str) or not kecamatan.strip()):
        raise ValueError(f"{where}: kecamatan must be a non-empty string")
    categories = _string_list(entry.get("categories", []), f"{where}: categories")
    for category in categories:
        if not CATEGORY_CODE.match(category):
            raise ValueError(f"{where}: category {category!r} must match {CATEGORY_CODE.pattern}")
    keywords = _string_list(entry.get("keywords", []), f"{where}: keywords")
    for keyword in keywords:
        if not words(keyword):
            raise ValueError(f"{where}: keyword {keyword!r} has no words")
    return Opd(
        code=code,
        name=name.strip(),
        level=level,
        categories=categories,
        keywords=keywords,
        kecamatan=kecamatan.strip() if kecamatan else None,
    )


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings")
    if len(set(value)) != len(value):
        raise ValueError(f"{where} has duplicates")
    return tuple(value)


def _index_categories(
    opds: list[Opd],
) -> tuple[dict[str, Opd], dict[str, dict[str, Opd]]]:
    """Category owners, checking that each category has exactly one.

    A category held only by sub-district offices is territorial: it has one owner per
    kecamatan, chosen by the complaint's location.
    """
    holders: dict[str, list[Opd]] = {}
    for opd in opds:
        for category in opd.categories:
            holders.setdefault(category, []).append(opd)
    by_category: dict[str, Opd] = {}
    by_kecamatan: dict[str, dict[str, Opd]] = {}
    for category, owners in holders.items():
        if all(o.kecamatan for o in owners):
            offices: dict[str, Opd] = {}
            for office in owners:
                for key in _kecamatan_keys(office.kecamatan or ""):
                    if key in offices:
                        raise ValueError(
                            f"routing table: category {category!r} is held by both "
                            f"{offices[key].code!r} and {office.code!r} for the same kecamatan"
                        )
                    offices[key] = office
            by_kecamatan[category] = offices
        elif len(owners) == 1:
            by_category[category] = owners[0]
        else:
            codes = ", ".join(repr(o.code) for o in owners)
            raise ValueError(
                f"routing table: category {category!r} must map to exactly one OPD, not {codes}"
            )
    return by_category, by_kecamatan


def _index_keywords(opds: list[Opd]) -> dict[str, tuple[_Phrase, ...]]:
    """Keyword phrases by first word, longest first, checking each has one owner."""
    owners: dict[tuple[str, ...], _Phrase] = {}
    for opd in opds:
        for keyword in opd.keywords:
            key = words(keyword)
            other = owners.get(key)
            if other is not None:
                raise ValueError(
                    f"routing table: keyword {keyword!r} of {opd.code!r} is already a keyword "
                    f"of {other.opd!r}"
                )
            owners[key] = _Phrase(words=key, keyword=keyword, opd=opd.code)
    index: dict[str, list[_Phrase]] = {}
    for phrase in owners.values():
        index.setdefault(phrase.words[0], []).append(phrase)
    return {
        first: tuple(sorted(phrases, key=lambda p: -len(p.words)))
        for first, phrases in index.items()
    }
