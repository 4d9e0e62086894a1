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

What a complaint is about (``topic_words``) is read from the same stems, less two kinds
of words that say nothing about its subject however many keywords they hold:

- polite formulas at the start of a clause (``FORMULAS``): "Mohon izin melapor",
  "Assalamualaikum", "Dengan hormat", "Izin min": the "izin" of a greeting is no permit;
- the addressee line of a letter ("Yth. Kepala Dinas Perizinan", "Kepada Bapak Kadis PU",
  "Ditujukan kepada ..."): a letter is often addressed to one office and about another.

It also keeps where the text pauses (``CLAUSE``: a comma or the like; ``SENTENCE``: a full
stop, a question or exclamation mark, a new line, or a formula or addressee line taken
out), so that matching can keep a phrase or a place within its clause or sentence.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any, NamedTuple

__all__ = [
    "ADDRESSEE_MARKERS",
    "CLAUSE",
    "FORMULAS",
    "INFORMAL",
    "NO_BREAK",
    "SENTENCE",
    "STEM_OVERRIDES",
    "TopicWords",
    "normalize",
    "stem",
    "stems",
    "topic_words",
]

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


def _spelled_out(word: str) -> str:
    """One lowercased word, its reduplication digit dropped and its informal spelling
    spelled out (possibly as several words: "ortu" is "orang tua")."""
    expanded = INFORMAL.get(word)
    if expanded is None:
        match = _REDUPLICATED.match(word)
        if match:
            word = match.group(1)
            expanded = INFORMAL.get(word, word)
        else:
            expanded = word
    return expanded


def normalize(text: str) -> tuple[str, ...]:
    """The words of ``text``: lowercased, without punctuation, informal spellings spelled out.

    >>> normalize("Jln. berlubang2, gk diperbaiki!")
    ('jalan', 'berlubang', 'tidak', 'diperbaiki')
    """
    out: list[str] = []
    for word in _NON_WORD.sub(" ", text.lower()).split():
        out.extend(_spelled_out(word).split())
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


# --- What a complaint is about ------------------------------------------------------------

NO_BREAK = 0
"""No pause between two words (a space, a hyphen, the dot of "Jl." or "50.000")."""
CLAUSE = 1
"""A pause within a sentence: a comma, semicolon, colon or bracket."""
SENTENCE = 2
"""The end of a sentence or line, or a formula or addressee line taken out between."""

FORMULAS: tuple[str, ...] = (
    # Greetings.
    "assalamualaikum warahmatullahi wabarakatuh", "assalamualaikum wr wb", "assalamualaikum",
    "assalamu alaikum warahmatullahi wabarakatuh", "assalamu alaikum wr wb",
    "assalamu alaikum", "asalamualaikum", "assalammualaikum",
    "wassalamualaikum warahmatullahi wabarakatuh", "wassalamualaikum wr wb",
    "wassalamualaikum", "wassalam", "warahmatullahi wabarakatuh", "wr wb",
    "salam sejahtera", "salam hormat", "salam", "selamat pagi", "selamat siang",
    "selamat sore", "selamat malam", "halo", "hallo", "hai", "permisi", "punten", "tabik",
    # Letters.
    "dengan hormat", "hormat saya", "hormat kami",
    # Apologies and leave: the "izin" of "mohon izin" is no permit.
    "mohon maaf sebelumnya", "mohon maaf", "maaf sebelumnya", "maaf",
    "mohon izin melapor", "mohon izin lapor", "mohon izin bertanya", "mohon izin tanya",
    "mohon izin menyampaikan", "mohon izin mengadu", "mohon izin",
    "izin melapor", "izin lapor", "izin bertanya", "izin tanya", "izin menyampaikan",
    "izin mengadu",
    # Thanks.
    "terima kasih banyak", "terima kasih", "terimakasih", "makasih", "trims",
)  # fmt: skip
"""Polite formulas, as normalised words: not read as topic at the start of a clause.

A bare "izin" is a formula only when it makes a clause on its own or greets someone
("Izin, mau tanya", "izin min"); otherwise it stays a word ("izin usaha")."""

ADDRESSEE_MARKERS: tuple[str, ...] = ("yth", "yang terhormat", "kepada", "ditujukan", "teruntuk")
"""Words that open a letter's addressee line: "yth" wherever it stands, the others at the
start of a sentence (after any formulas). The line runs to its end or to the first end of
a sentence, whichever comes first, and is not read as topic."""

ADDRESSEE_MAX_WORDS = 20
"""The longest addressee line: a sentence that opens with "kepada" and runs on without a
stop is cut after this many words."""

_VOCATIVES = frozenset(
    {"min", "admin", "mimin", "kak", "kakak", "gan", "sob", "pak", "bapak", "bu", "ibu",
     "mas", "mbak", "bang"}
)  # fmt: skip
"""Whom a greeting is addressed to ("izin min", "selamat pagi pak")."""
_ADMIN = frozenset({"min", "admin", "mimin", "kak", "kakak", "gan", "sob"})
"""Vocatives that are never the start of a title: "pak" can be the "pak" of "pak lurah"."""

_ABBREVIATIONS = frozenset(
    {"yth", "kpd", "cq", "jl", "jln", "gg", "kel", "kec", "kab", "prov", "komp", "perum",
     "no", "rt", "rw", "rp", "bpk", "pk", "sdr", "dr", "drs", "dra", "ir", "hj", "st", "sh",
     "se", "si", "mm", "mt", "pd", "spd", "amd", "sos", "kom", "dll", "dsb", "dst", "tgl",
     "wr", "wb"}
)  # fmt: skip
"""Words whose dot is no end of a sentence ("Yth. Bpk. H. Ahmad, S.T."); so are single
letters."""

_TOKEN = re.compile(r"([^\W_]+)([\W_]*)")
"""A word and what follows it up to the next word."""
_STOP = re.compile(r"\.\s|\.\.")


def _formula_index() -> dict[str, tuple[tuple[str, ...], ...]]:
    index: dict[str, list[tuple[str, ...]]] = {}
    for formula in FORMULAS:
        words = normalize(formula)
        if words not in index.get(words[0], ()):
            index.setdefault(words[0], []).append(words)
    return {w: tuple(sorted(f, key=lambda p: -len(p))) for w, f in index.items()}


_FORMULA_INDEX = _formula_index()
_OPENERS = frozenset(m for m in ADDRESSEE_MARKERS if " " not in m and m != "yth")


class TopicWords(NamedTuple):
    """The stems a complaint's subject is read from, and the pause before each."""

    stems: tuple[str, ...]
    breaks: tuple[int, ...]
    """Before each stem: ``NO_BREAK``, ``CLAUSE`` or ``SENTENCE``."""


def _pause(separator: str, before: str) -> int:
    """The pause that ``separator`` (what stands between two words) makes after ``before``."""
    if "\n" in separator or "!" in separator or "?" in separator:
        return SENTENCE
    if (
        "." in separator
        and _STOP.search(separator)
        and len(before) > 1
        and before not in _ABBREVIATIONS
    ):
        return SENTENCE
    if any(mark in separator for mark in ",;:()[]"):
        return CLAUSE
    return NO_BREAK


def _words_and_pauses(text: str) -> tuple[list[str], list[int]]:
    """The words of ``text`` as ``normalize`` reads them, and the pause before each."""
    words: list[str] = []
    breaks: list[int] = []
    pause = NO_BREAK
    for match in _TOKEN.finditer(text.lower()):
        raw, separator = match.groups()
        spelled = INFORMAL.get(raw)
        if spelled is None:
            spelled = _spelled_out(raw) if raw[-1] == "2" else raw
        if " " in spelled:
            first, *rest = spelled.split()
            words.append(first)
            breaks.append(pause)
            words.extend(rest)
            breaks.extend([NO_BREAK] * len(rest))
        else:
            words.append(spelled)
            breaks.append(pause)
        pause = NO_BREAK if separator == " " else _pause(separator, raw)
    return words, breaks


def _formula_length(words: list[str], breaks: list[int], i: int) -> int:
    """How many words at ``i`` (the start of a clause) are a polite formula, with the
    vocatives after it ("selamat pagi min"); 0 if none are."""
    n = len(words)
    end = i
    for formula in _FORMULA_INDEX.get(words[i], ()):
        if tuple(words[i : i + len(formula)]) == formula:
            end = i + len(formula)
            break
    else:
        if words[i] == "izin" and (i + 1 == n or breaks[i + 1] or words[i + 1] in _VOCATIVES):
            end = i + 1
    j = end
    while j < n and words[j] in _VOCATIVES and (j == i or not breaks[j]):
        j += 1
    if j < n and not breaks[j]:
        # The vocatives run on into the clause: "pak" may be the "pak" of "pak lurah".
        while j > end and words[j - 1] not in _ADMIN:
            j -= 1
    return j - i


def _opens_addressee(words: list[str], i: int) -> bool:
    """Whether the word at ``i``, at the start of a sentence, opens an addressee line."""
    word = words[i]
    return word in _OPENERS or (word == "yang" and words[i + 1 : i + 2] == ["terhormat"])


def topic_words(text: str) -> TopicWords:
    """The stems of ``text`` that can say what it is about, with the pause before each.

    Polite formulas at the start of a clause and the addressee line are left out; the
    word after what was left out starts a sentence.

    >>> topic_words("Mohon izin melapor. Yth Kadis Perizinan\\nJalan rusak, bahaya")
    TopicWords(stems=('jalan', 'rusak', 'bahaya'), breaks=(2, 0, 1))
    """
    words, breaks = _words_and_pauses(text)
    n = len(words)
    keep = [True] * n
    i = 0
    clause_start = sentence_start = True
    while i < n:
        if breaks[i]:
            clause_start = True
            sentence_start = sentence_start or breaks[i] == SENTENCE
        if clause_start:
            length = _formula_length(words, breaks, i)
            if length:
                keep[i : i + length] = [False] * length
                i += length
                continue
        word = words[i]
        if word == "yth" or (sentence_start and _opens_addressee(words, i)):
            end = i + 1
            while end < n and breaks[end] != SENTENCE and end - i < ADDRESSEE_MAX_WORDS:
                end += 1
            keep[i:end] = [False] * (end - i)
            i = end
            continue
        clause_start = sentence_start = False
        i += 1
    out_stems: list[str] = []
    out_breaks: list[int] = []
    left_out = False
    for word, pause, kept in zip(words, breaks, keep, strict=True):
        if not kept:
            left_out = True
            continue
        out_stems.append(stem(word))
        out_breaks.append(SENTENCE if left_out else pause)
        left_out = False
    return TopicWords(tuple(out_stems), tuple(out_breaks))
