"""Indonesian text normalisation: informal spellings, punctuation, stems, and the words a
complaint's topic is read from."""

from __future__ import annotations

import pytest

from lapor.router.text import (
    CLAUSE,
    INFORMAL,
    NO_BREAK,
    SENTENCE,
    normalize,
    stem,
    stems,
    topic_words,
)


@pytest.mark.parametrize(
    ("informal", "formal"),
    [
        ("jln", "jalan"), ("gk", "tidak"), ("tdk", "tidak"), ("yg", "yang"),
        ("dgn", "dengan"), ("sdh", "sudah"), ("blm", "belum"), ("krn", "karena"),
        ("bgt", "banget"), ("org", "orang"), ("tp", "tapi"), ("jg", "juga"),
        ("utk", "untuk"), ("dr", "dari"), ("sy", "saya"), ("gak", "tidak"),
        ("udah", "sudah"), ("gg", "gang"),
    ],
)  # fmt: skip
def test_informal_spellings_are_spelled_out(informal: str, formal: str) -> None:
    assert INFORMAL[informal] == formal
    assert normalize(f"{informal.upper()}.") == tuple(formal.split())


def test_normalize_lowercases_and_strips_punctuation() -> None:
    assert normalize("Jln. berlubang2, gk diperbaiki!") == (
        "jalan", "berlubang", "tidak", "diperbaiki",
    )  # fmt: skip
    assert normalize("E-KTP & KK (hilang)...") == ("e", "ktp", "kk", "hilang")
    assert normalize("  ") == ()


def test_routed_abbreviations_are_kept() -> None:
    # Names of things the router routes, although they look like informal spellings.
    assert normalize("sd smp kk rs tk pju") == ("sd", "smp", "kk", "rs", "tk", "pju")


@pytest.mark.parametrize(
    ("word", "root"),
    [
        ("berlubang", "lubang"), ("sampahnya", "sampah"), ("pengaspalan", "aspal"),
        ("tergenang", "genang"), ("kebanjiran", "banjir"), ("diangkut", "angkut"),
        ("ktpnya", "ktp"), ("pjunya", "pju"), ("tanya", "tanya"), ("kerusakan", "rusak"),
        ("pemadaman", "padam"), ("kecamatan", "kecamatan"), ("kelurahan", "kelurahan"),
        ("perumahan", "perumahan"), ("2024", "2024"), ("ak1", "ak1"),
    ],
)  # fmt: skip
def test_stem(word: str, root: str) -> None:
    assert stem(word) == root


def test_stems_of_a_text() -> None:
    assert stems("Sampahnya blm diangkut, jln tergenang") == (
        "sampah", "belum", "angkut", "jalan", "genang",
    )  # fmt: skip


def test_stems_are_cached() -> None:
    stem.cache_clear()
    stems("pengangkutan sampah pengangkutan")
    info = stem.cache_info()
    assert info.hits >= 1
    assert info.currsize == 2


# --- Topic words: polite formulas and addressee lines ----------------------------------


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Mohon izin melapor, lampu merah mati", "lampu merah mati"),
        ("mhn ijin melapor: lampu merah mati", "lampu merah mati"),
        ("Izin bertanya min, kapan sampah diangkut?", "kapan sampah diangkut"),
        ("Izin min, air keruh", "air keruh"),
        ("Izin, mau tanya air keruh", "mau tanya air keruh"),
        ("Mohon izin. Air keruh", "air keruh"),
        ("Assalamualaikum wr. wb. Izin min, air keruh", "air keruh"),
        ("Assalamu'alaikum pak, air keruh", "air keruh"),
        ("Permisi kak, jalan berlubang", "jalan berlubang"),
        ("Selamat pagi admin. Jalan berlubang", "jalan berlubang"),
        ("Dengan hormat,\nMohon maaf, jalan berlubang", "jalan berlubang"),
        ("Jalan berlubang. Terima kasih.", "jalan berlubang"),
    ],
)
def test_polite_formulas_are_not_topic(text: str, topic: str) -> None:
    assert topic_words(text).stems == stems(topic)


@pytest.mark.parametrize(
    "text",
    [
        "Izin usaha saya belum terbit",  # "izin" is the permit, not leave
        "Saya sudah urus izin pak, belum keluar",  # not at the start of a clause
        "Saya minta maaf tapi jalan berlubang",
        "Kami mohon izin keramaian diproses",
    ],
)
def test_formula_words_elsewhere_stay_topic(text: str) -> None:
    assert topic_words(text).stems == stems(text)


def test_a_formula_keeps_the_title_after_its_vocative() -> None:
    # "pak" greets, but "pak lurah" is a neighbourhood keyword: it stays.
    assert topic_words("Izin pak lurah, jalan rusak").stems == stems("pak lurah jalan rusak")
    assert topic_words("Mohon izin, saya mau tanya izin usaha").stems == stems(
        "saya mau tanya izin usaha"
    )


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Yth. Kepala Dinas Perizinan Kota Pontianak\nSampah menumpuk", "sampah menumpuk"),
        ("Kepada Yth. Bapak Kadis PU\nAir keruh sejak pagi", "air keruh sejak pagi"),
        ("Kpd Dinas Perhubungan. Tumpukan sampah tidak diangkut.", "tumpukan sampah tidak angkut"),
        ("Ditujukan kepada Dinas Kesehatan\nKTP saya hilang", "ktp saya hilang"),
        ("Kepada yang terhormat Bapak Walikota\nKTP saya hilang", "ktp saya hilang"),
        # Abbreviations and initials do not end the line early.
        ("Kepada Yth. Bpk. H. Ahmad, S.T. Kepala Dinas Perizinan\nJalan rusak", "jalan rusak"),
        # After the formulas of a letter.
        ("Dengan hormat, kepada Bapak Walikota. Lampu merah mati.", "lampu merah mati"),
        ("Laporan jalan rusak\nMohon perhatian Yth Dinas Perizinan\nSudah 3 bulan",
         "laporan jalan rusak mohon perhatian sudah 3 bulan"),
    ],
)  # fmt: skip
def test_the_addressee_line_is_not_topic(text: str, topic: str) -> None:
    assert topic_words(text).stems == stems(topic)


def test_kepada_within_a_sentence_is_topic() -> None:
    text = "Saya sudah melapor kepada Dinas Lingkungan Hidup tapi sampah masih menumpuk."
    assert topic_words(text).stems == stems(text)


def test_an_addressee_line_without_an_end_stops_after_a_few_words() -> None:
    text = "Kepada " + "kata " * 30 + "sampah"
    assert topic_words(text).stems[-1] == "sampah"


def test_topic_words_keep_the_pauses() -> None:
    words = topic_words("Jl. Merdeka no. 5, Rp50.000! Lalu\nsampah (bau)")
    assert words.stems == ("jalan", "merdeka", "no", "5", "rp50", "000", "lalu", "sampah", "bau")
    assert words.breaks == (
        NO_BREAK, NO_BREAK, NO_BREAK, NO_BREAK, CLAUSE, NO_BREAK, SENTENCE, SENTENCE, CLAUSE,
    )  # fmt: skip
    # What was left out ends a sentence: no phrase runs across it.
    assert topic_words("Jalan, mohon maaf, rusak").breaks == (NO_BREAK, SENTENCE)


def test_topic_words_read_the_words_normalize_reads() -> None:
    text = "Jln. berlubang2, gk diperbaiki! ortu sy E-KTP-nya hilang\n\nsdh 3 bln"
    assert topic_words(text).stems == stems(text)
