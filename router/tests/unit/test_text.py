"""Indonesian text normalisation: informal spellings, punctuation, stems."""

from __future__ import annotations

import pytest

from lapor.router.text import INFORMAL, normalize, stem, stems


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
