"""Routing decisions of the packaged table and the checks a table must pass at load."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from importlib.resources import files

import pytest

from lapor.router.domain import Decision, RoutingTable
from lapor.shared.events import OPD_CODE, ComplaintReceived, ComplaintRouted, Location

CITY_UNITS = {
    "dpupr", "disperkim", "dlh", "dishub", "disdukcapil", "dinkes", "rsud", "disdikbud",
    "dinsos", "satpolpp", "diskominfo", "bpbd", "dpmptsp", "bapenda", "pdam",
}  # fmt: skip
SUBDISTRICTS = {
    "kec_pontianak_barat": "Pontianak Barat",
    "kec_pontianak_kota": "Pontianak Kota",
    "kec_pontianak_selatan": "Pontianak Selatan",
    "kec_pontianak_tenggara": "Pontianak Tenggara",
    "kec_pontianak_timur": "Pontianak Timur",
    "kec_pontianak_utara": "Pontianak Utara",
}
OUTSIDE = {
    "pemprov_kalbar": ("province", "jalan_provinsi"),
    "pln": ("soe", "listrik"),
    "bpjs_kesehatan": ("national", "jkn"),
    "polri": ("national", "pelayanan_kepolisian"),
}
NEUTRAL_BODY = "Mohon ditindaklanjuti secepatnya, terima kasih banyak."

SMALL_TABLE = """
version = "1.0"
coordinator = "admin"

[[opd]]
code = "admin"
name = "Admin"
level = "city"
categories = ["informasi_publik"]
keywords = ["informasi"]

[[opd]]
code = "alpha"
name = "Alpha"
level = "city"
categories = ["a"]
keywords = ["kata"]

[[opd]]
code = "beta"
name = "Beta"
level = "city"
categories = ["b"]
keywords = ["frasa"]
"""


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return RoutingTable.load()


def complaint(
    title: str = "Laporan warga",
    body: str = NEUTRAL_BODY,
    *,
    category: str | None = None,
    kecamatan: str | None = None,
    suggested_opd: str | None = None,
) -> ComplaintReceived:
    return ComplaintReceived(
        title=title,
        body=body,
        category=category,
        location=Location(kecamatan=kecamatan) if kecamatan is not None else None,
        suggested_opd=suggested_opd,
    )


def test_packaged_table_covers_every_unit(table: RoutingTable) -> None:
    codes = set(table.opds)
    assert CITY_UNITS | set(SUBDISTRICTS) | set(OUTSIDE) <= codes
    assert table.coordinator.code == "diskominfo"
    assert table.opd("rsud").name == "RSUD Sultan Syarif Mohamad Alkadrie"
    assert table.opd("pdam").name == "Perumda Air Minum Tirta Khatulistiwa"
    for code, kecamatan in SUBDISTRICTS.items():
        office = table.opd(code)
        assert office.level == "subdistrict"
        assert office.kecamatan == kecamatan
        assert "pelayanan_kecamatan" in office.categories
    for code, (level, category) in OUTSIDE.items():
        assert table.opd(code).level == level
        assert category in table.opd(code).categories


def test_all_opd_codes_match_opd_code_pattern(table: RoutingTable) -> None:
    for code, opd in table.opds.items():
        assert re.fullmatch(OPD_CODE, code), code
        assert opd.code == code


@pytest.mark.parametrize(
    ("category", "opd"),
    [
        ("jalan", "dpupr"),
        ("drainase", "dpupr"),
        ("sampah", "dlh"),
        ("parkir", "dishub"),
        ("ktp", "disdukcapil"),
        ("air_minum", "pdam"),
        ("listrik", "pln"),
        ("jalan_provinsi", "pemprov_kalbar"),
        ("jkn", "bpjs_kesehatan"),
        ("pelayanan_kepolisian", "polri"),
    ],
)
def test_category_routes_to_its_owner(table: RoutingTable, category: str, opd: str) -> None:
    # The body points elsewhere on purpose: a category beats keywords.
    decision = table.decide(complaint(body="Banyak sampah dan jln berlubang", category=category))
    assert decision.opd == opd
    assert decision.opd_name == table.opd(opd).name
    assert decision.rule == f"category:{category}"
    assert decision.confidence == 0.9
    assert decision.rules_version == table.version
    assert table.opd(opd).name in decision.reason


def test_informal_spelling_routes_by_keyword(table: RoutingTable) -> None:
    decision = table.decide(complaint("Jln berlubang", "Jln berlubang di Gg. Mawar, bahaya!"))
    assert decision.opd == "dpupr"
    assert decision.rule.startswith("keyword:")
    assert decision.rule == "keyword:jln berlubang"
    assert decision.confidence == 0.6


def test_longer_phrase_spends_its_words(table: RoutingTable) -> None:
    # "lampu jln" is a street light, not a road; "jln" must not count for DPUPR too.
    decision = table.decide(complaint("Lampu jln mati", "Lampu jln di Jl. Tanjungpura mati."))
    assert decision.opd == "dishub"
    assert decision.rule == "keyword:lampu jln"


def test_keyword_match_ignores_case_punctuation_and_nya(table: RoutingTable) -> None:
    decision = table.decide(complaint("SAMPAHNYA!!!", "Sampahnya, menumpuk; sudah 3 hari."))
    assert decision.opd == "dlh"


def test_keywords_match_whole_words_only(table: RoutingTable) -> None:
    # "simpang" contains "sim" (a police keyword) but is not that word.
    decision = table.decide(complaint("Di simpang empat", "Kejadian di simpang empat kemarin."))
    assert decision.rule == "fallback"


def test_most_keyword_hits_wins(table: RoutingTable) -> None:
    body = "Parit tersumbat, sampah menumpuk, truk sampah tidak datang, bau busuk."
    decision = table.decide(complaint("Lingkungan kotor", body))
    assert decision.opd == "dlh"


def test_keyword_tie_goes_to_first_in_file_order() -> None:
    small = RoutingTable.from_text(SMALL_TABLE)
    assert small.decide(complaint("frasa dan kata", "ada frasa dan ada kata")).opd == "alpha"
    assert small.decide(complaint("frasa frasa kata", "frasa dan kata saja")).opd == "beta"


def test_unknown_category_falls_through_to_keywords(table: RoutingTable) -> None:
    decision = table.decide(complaint("Air keruh", "Air PDAM keruh sejak pagi.", category="lain"))
    assert decision.opd == "pdam"
    assert decision.rule.startswith("keyword:")


@pytest.mark.parametrize(
    ("kecamatan", "opd"),
    [
        ("Pontianak Barat", "kec_pontianak_barat"),
        ("barat", "kec_pontianak_barat"),
        ("  PONTIANAK   timur ", "kec_pontianak_timur"),
        ("Kec. Pontianak Utara", "kec_pontianak_utara"),
        ("PontianakKota", "kec_pontianak_kota"),
        ("tenggara", "kec_pontianak_tenggara"),
        ("Pontianak Selatan", "kec_pontianak_selatan"),
    ],
)
def test_subdistrict_service_routes_by_location(
    table: RoutingTable, kecamatan: str, opd: str
) -> None:
    decision = table.decide(complaint(category="pelayanan_kecamatan", kecamatan=kecamatan))
    assert decision.opd == opd
    assert decision.rule == f"location:{table.opd(opd).kecamatan}"
    assert decision.confidence == 0.85


@pytest.mark.parametrize("kecamatan", [None, "", "Sungai Kakap"])
def test_subdistrict_service_without_known_kecamatan_falls_through(
    table: RoutingTable, kecamatan: str | None
) -> None:
    decision = table.decide(
        complaint(category="pelayanan_kecamatan", kecamatan=kecamatan, suggested_opd="dinsos")
    )
    assert decision.rule == "suggested"
    assert decision.opd == "dinsos"


def test_suggested_opd_is_used_when_nothing_else_matches(table: RoutingTable) -> None:
    decision = table.decide(complaint(suggested_opd="dinsos"))
    assert decision.opd == "dinsos"
    assert decision.rule == "suggested"
    assert decision.confidence == 0.5


def test_keywords_beat_the_suggestion(table: RoutingTable) -> None:
    decision = table.decide(
        complaint("Tagihan listrik", "Token listrik hilang", suggested_opd="pdam")
    )
    assert decision.opd == "pln"


def test_unknown_suggestion_falls_back_to_coordinator(table: RoutingTable) -> None:
    decision = table.decide(complaint(suggested_opd="dinas_antah_berantah"))
    assert decision.opd == "diskominfo"
    assert decision.rule == "fallback"


def test_fallback_is_the_coordinator(table: RoutingTable) -> None:
    decision = table.decide(complaint())
    assert decision.opd == table.coordinator.code == "diskominfo"
    assert decision.rule == "fallback"
    assert decision.confidence == 0.0
    assert "coordinating admin" in decision.reason
    assert "manually" in decision.reason


def test_every_category_maps_to_exactly_one_opd(table: RoutingTable) -> None:
    owners: dict[tuple[str, str | None], list[str]] = {}
    for opd in table.opds.values():
        for category in opd.categories:
            owners.setdefault((category, opd.kecamatan), []).append(opd.code)
    for key, codes in owners.items():
        assert len(codes) == 1, (key, codes)
    for (category, kecamatan), (code,) in owners.items():
        decision = table.decide(complaint(category=category, kecamatan=kecamatan))
        assert decision.opd == code, category


def test_categories_are_valid_complaint_categories(table: RoutingTable) -> None:
    for opd in table.opds.values():
        for category in opd.categories:
            complaint(category=category)  # raises if the intake could never send it


def test_duplicate_category_is_rejected() -> None:
    text = SMALL_TABLE.replace('categories = ["b"]', 'categories = ["b", "a"]')
    with pytest.raises(ValueError, match="exactly one OPD"):
        RoutingTable.from_text(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('keywords = ["frasa"]', 'keywords = ["KATA!"]', "already a keyword"),
        ('coordinator = "admin"', 'coordinator = "nobody"', "coordinator"),
        ('code = "beta"', 'code = "Beta-1"', "code must match"),
        ('code = "beta"', 'code = "alpha"', "appears twice"),
        ('level = "city"\ncategories = ["b"]', 'level = "town"\ncategories = ["b"]', "level"),
        ('categories = ["b"]', 'categories = ["B"]', "category"),
        ('categories = ["b"]', 'category = ["b"]', "unknown field"),
        ('version = "1.0"', "", "version"),
        (
            'level = "city"\ncategories = ["b"]',
            'level = "subdistrict"\ncategories = ["b"]',
            "kecamatan",
        ),
        ("[[opd]]", "[[opd]]\n[[opd]]", "code must match"),
    ],
)
def test_malformed_tables_are_rejected(old: str, new: str, message: str) -> None:
    assert old in SMALL_TABLE
    with pytest.raises(ValueError, match=message):
        RoutingTable.from_text(SMALL_TABLE.replace(old, new, 1))


def test_subdistrict_offices_may_share_a_category_but_not_a_kecamatan() -> None:
    offices = "".join(
        f"""
[[opd]]
code = "kec_{n}"
name = "Kecamatan {n}"
level = "subdistrict"
kecamatan = "Pontianak {kec}"
categories = ["pelayanan_kecamatan"]
"""
        for n, kec in (("one", "Barat"), ("two", "Timur"))
    )
    small = RoutingTable.from_text(SMALL_TABLE + offices)
    assert small.decide(complaint(category="pelayanan_kecamatan", kecamatan="timur")).opd == (
        "kec_two"
    )
    with pytest.raises(ValueError, match="same kecamatan"):
        RoutingTable.from_text(SMALL_TABLE + offices.replace("Timur", "Barat"))


def test_version_is_file_version_plus_text_hash() -> None:
    digest = hashlib.sha256(SMALL_TABLE.encode()).hexdigest()[:8]
    assert RoutingTable.from_text(SMALL_TABLE).version == f"1.0+{digest}"
    # Any edit changes the version, even if nobody bumped the number.
    edited = RoutingTable.from_text(SMALL_TABLE + "\n# edited\n")
    assert edited.version.startswith("1.0+")
    assert edited.version != f"1.0+{digest}"


def test_packaged_version_contains_hash_of_the_file(table: RoutingTable) -> None:
    text = files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    assert table.version == f"2026.11.1+{digest}"
    assert re.fullmatch(r"2026\.11\.1\+[0-9a-f]{8}", table.version)


def test_load_reads_a_given_path(tmp_path) -> None:
    path = tmp_path / "table.toml"
    path.write_text(SMALL_TABLE, encoding="utf-8")
    assert RoutingTable.load(path).version == RoutingTable.from_text(SMALL_TABLE).version


def test_decision_fits_the_complaint_routed_event(table: RoutingTable) -> None:
    for c in (complaint(category="jalan"), complaint("Jln berlubang", "jln berlubang parah")):
        decision: Decision = table.decide(c)
        routed = ComplaintRouted(**dataclasses.asdict(decision))
        assert routed.opd == decision.opd


def test_opds_is_a_copy(table: RoutingTable) -> None:
    table.opds.clear()
    assert table.opd("dpupr") is not None
