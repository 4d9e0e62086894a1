"""Indonesian text normalisation for routing: the words a keyword is matched against.

Complaints are written the way people text: "jln rusak gk diperbaiki2 sdh 3 bln". Before
matching, a text is

1. lowercased, with punctuation removed ("Jl." and "jl" are the same word);
2. stripped of the reduplication digit ("lubang2" is "lubang", as "lubang-lubang" is);
3. spelled out where it uses a common informal spelling or abbreviation (``INFORMAL``:
   "gk" is "tidak", "jln" is "jalan", "sdh" is "sudah");
4. stemmed with Sastrawi, the Indonesian stemmer (Nazief-Adriani with Arifin-Setiono's
   improvements), so "berlubang", "lubangnya" and "lubang" are one word. A few words it
   gets wrong, or whose stem would erase a distinction routing needs, are fixed in
   ``STEM_OVERRIDES``.

Routing keywords go through the same steps when a table is loaded, so a keyword matches
whatever spelling and affixes the citizen used. Pure functions; the stemmer is built
once, on first use, and stems are cached.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

__all__ = ["INFORMAL", "STEM_OVERRIDES", "normalize", "stem", "stems"]

_NON_WORD = re.compile(r"[\W_]+")
_REDUPLICATED = re.compile(r"^([a-z]{2,})2$")

INFORMAL: dict[str, str] = {
    # Negation and aspect: they are part of keywords such as "air tidak mengalir".
    "tdk": "tidak", "tak": "tidak", "gk": "tidak", "gak": "tidak", "ga": "tidak",
    "nggak": "tidak", "ngga": "tidak", "ngak": "tidak", "enggak": "tidak",
    "engga": "tidak", "kagak": "tidak", "tidk": "tidak",
    "sdh": "sudah", "sudh": "sudah", "udh": "sudah", "udah": "sudah", "dah": "sudah",
    "blm": "belum", "blom": "belum", "belom": "belum", "lom": "belum",
    "bkn": "bukan", "msh": "masih", "masi": "masih", "lg": "lagi", "lgi": "lagi",
    "sdg": "sedang", "lgsg": "langsung", "trs": "terus", "trus": "terus",
    # Function words.
    "yg": "yang", "dgn": "dengan", "dg": "dengan", "krn": "karena", "krna": "karena",
    "karna": "karena", "tp": "tapi", "tpi": "tapi", "jg": "juga", "utk": "untuk",
    "untk": "untuk", "dr": "dari", "dri": "dari", "dlm": "dalam", "kpd": "kepada",
    "ttg": "tentang", "spt": "seperti", "sm": "sama", "aja": "saja", "aj": "saja",
    "sj": "saja", "kl": "kalau", "klo": "kalau", "kalo": "kalau", "bs": "bisa",
    "bsa": "bisa", "hrs": "harus", "sampe": "sampai", "smpe": "sampai",
    "ampe": "sampai", "bgt": "banget", "bngt": "banget", "byk": "banyak",
    "bnyk": "banyak", "bnyak": "banyak", "sgt": "sangat", "skrg": "sekarang",
    "skrng": "sekarang", "kmrn": "kemarin", "kmarin": "kemarin", "tlg": "tolong",
    "tolg": "tolong", "mhn": "mohon", "gmn": "bagaimana", "gimana": "bagaimana",
    "knp": "kenapa", "napa": "kenapa", "emg": "memang", "emang": "memang",
    "bener": "benar", "bnr": "benar", "tau": "tahu",
    # People and time.
    "sy": "saya", "sya": "saya", "aku": "saya", "gue": "saya", "gw": "saya",
    "org": "orang", "ortu": "orang tua",
    "bpk": "bapak", "pk": "pak", "hr": "hari", "hri": "hari",
    "mgg": "minggu", "mggu": "minggu", "bln": "bulan", "thn": "tahun", "th": "tahun",
    "jm": "jam", "mlm": "malam", "pgi": "pagi",
    # Places.
    "jln": "jalan", "jl": "jalan", "jaln": "jalan", "gg": "gang", "kel": "kelurahan",
    "kec": "kecamatan", "kab": "kabupaten", "prov": "provinsi", "dpn": "depan",
    "blkg": "belakang", "blakang": "belakang", "sblh": "sebelah", "rmh": "rumah",
    "rmah": "rumah", "kntr": "kantor", "kantr": "kantor", "komp": "kompleks",
    "komplek": "kompleks", "perum": "perumahan", "psr": "pasar",
    # Things that are routing keywords, in the spellings people use.
    "lmpu": "lampu",
    "smpah": "sampah", "sampa": "sampah", "listrk": "listrik", "lstrik": "listrik",
    "ijin": "izin", "akte": "akta", "antri": "antre", "antrian": "antrean",
    "ngalir": "mengalir", "ngangkut": "mengangkut", "ngurus": "mengurus",
    "diurusin": "diurus", "bayarin": "bayar", "dibenerin": "diperbaiki",
    "benerin": "perbaiki", "dibetulin": "diperbaiki", "mampet": "tersumbat",
    "mampat": "tersumbat", "lobang": "lubang", "berlobang": "berlubang",
    "bolong": "berlubang",
}  # fmt: skip
"""Informal spellings and abbreviations, spelled out before stemming.

Abbreviations that are also names of routed things are deliberately absent: "sd" and
"smp" are schools (not "sampai dengan", "sampai"), "kk" is a family card, "rs" a
hospital, "tk" a kindergarten.
"""

STEM_OVERRIDES: dict[str, str] = {
    # Sastrawi over-stems these into other words.
    "kerusakan": "rusak", "tumpukan": "tumpuk", "perawat": "rawat", "pengemis": "pengemis",
    "pemadam": "padam", "pemadaman": "padam", "pengerukan": "keruk", "pemukiman": "permukiman",
    # Kept whole: their stems are common words that would match far too much ("rumah",
    # "kerja") or erase a distinction routing needs ("camat" is the head of a sub-district,
    # "kecamatan" also a place in every address; "lurah" likewise for "kelurahan";
    # "pengasapan" is mosquito fogging, "asap" the smoke of a fire).
    "pengasapan": "pengasapan", "kecamatan": "kecamatan", "kelurahan": "kelurahan",
    "perumahan": "perumahan", "permukiman": "permukiman", "pekerja": "pekerja",
    "pedagang": "pedagang",
    "pendidikan": "pendidikan", "kependudukan": "kependudukan", "pertanahan": "pertanahan",
}  # fmt: skip
"""Words whose stem is fixed by hand, checked before the stemmer."""


@cache
def _stemmer() -> Any:
    # Building the stemmer reads its root-word dictionary: do it once, on first use.
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return StemmerFactory().create_stemmer()


def normalize(text: str) -> tuple[str, ...]:
    """The words of ``text``: lowercased, without punctuation, informal spellings spelled out.

    >>> normalize("Jln. berlubang2, gk diperbaiki!")
    ('jalan', 'berlubang', 'tidak', 'diperbaiki')
    """
    out: list[str] = []
    for word in _NON_WORD.sub(" ", text.lower()).split():
        expanded = INFORMAL.get(word)
        if expanded is None:
            match = _REDUPLICATED.match(word)
            if match:
                word = match.group(1)
                expanded = INFORMAL.get(word, word)
            else:
                expanded = word
        out.extend(expanded.split())
    return tuple(out)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The root of one normalised word: "berlubang" is "lubang", "ktpnya" is "ktp"."""
    override = STEM_OVERRIDES.get(word)
    if override is not None:
        return override
    if not word.isalpha():
        return word  # numbers and codes such as "ak1" or "pbb2"
    root = _stemmer().stem(word)
    if root == word and word.endswith("nya") and len(word) >= 6:
        # The enclitic -nya on a word the stemmer does not know: "pjunya", "ktpnya".
        # Short words ending in -nya are roots ("tanya", "hanya", "punya").
        return stem(word[:-3])
    return root or word


def stems(text: str) -> tuple[str, ...]:
    """Normalised and stemmed words of ``text``: what routing keywords are matched on."""
    return tuple(stem(w) for w in normalize(text))
