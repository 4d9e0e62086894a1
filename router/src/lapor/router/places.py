"""Place names as lookup keys: a kecamatan or kelurahan however a citizen spells it.

The routing table's offices are indexed under these keys when the table is read
(``lapor.router.table``), and a complaint's place is looked up under them when it is routed
(``lapor.router.domain``): both sides must spell a place the same way, so both use these.
"""

from __future__ import annotations

import re

from lapor.router.text import normalize

_NON_WORD = re.compile(r"[\W_]+")
_KECAMATAN_PREFIXES = frozenset({"kecamatan", "kec"})
_CITY = "pontianak"


def _kecamatan_parts(name: str) -> list[str]:
    parts = _NON_WORD.sub(" ", name.lower()).split()
    return parts[1:] if parts and parts[0] in _KECAMATAN_PREFIXES else parts


def kecamatan_key(name: str) -> str:
    """Case-, space- and punctuation-blind form of a kecamatan name."""
    return "".join(_kecamatan_parts(name))


def kecamatan_keys(name: str) -> set[str]:
    """Spellings under which a kecamatan is recognized: "Kec. Pontianak Barat", "barat"."""
    parts = _kecamatan_parts(name)
    keys = {"".join(parts)} if parts else set()
    if len(parts) > 1 and parts[0] == _CITY:
        keys.add("".join(parts[1:]))
    return keys


def place_key(name: str) -> str:
    """Case-, space- and punctuation-blind form of a kelurahan name ("Kel. Mariana" is
    "mariana")."""
    words = normalize(name)
    if len(words) > 1 and words[0] in ("kelurahan", "desa"):
        words = words[1:]
    return "".join(words)
