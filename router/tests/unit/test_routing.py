"""Routing decisions of the packaged table and the checks a table must pass at load."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from importlib.resources import files

import pytest

from lapor.router.domain import Decision, RoutingTable
from lapor.shared.events import OPD_CODE, ComplaintReceived, ComplaintRouted, Location
from lapor.shared.registry import Registry, load_registry

CITY_UNITS = {
    "dpupr", "disperkim", "dlh", "dishub", "disdukcapil", "dinkes", "rsud", "disdikbud",
    "dinsos", "satpolpp", "diskominfo", "bpbd", "dpmptsp", "bapenda", "pdam", "disnaker",
    "diskumdag", "dppkp", "disporapar", "bkpsdm", "dp3a", "inspektorat",
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
    "bpjs_ketenagakerjaan": ("national", "jaminan_sosial_ketenagakerjaan"),
    "pos_indonesia": ("soe", "pos"),
    "ojk": ("national", "jasa_keuangan"),
    "bank_indonesia": ("national", "sistem_pembayaran"),
    "pertamina": ("soe", "bbm_lpg"),
    "bpom": ("national", "obat_makanan"),
    "asdp": ("soe", "penyeberangan"),
    "kemenag": ("national", "haji_umrah"),
    "bpn": ("national", "pertanahan"),
    "imigrasi": ("national", "keimigrasian"),
    "pengadilan": ("national", "peradilan"),
    "kejaksaan": ("national", "kejaksaan"),
    "djp": ("national", "pajak_pusat"),
    "bpjn": ("national", "jalan_nasional"),
    "kementerian": ("national", "kementerian_lain"),
}
NEUTRAL_BODY = "Mohon ditindaklanjuti secepatnya, terima kasih banyak."

SMALL_REGISTRY = Registry.from_text(
    """
version = "1"
coordinator = "admin"

[[opd]]
code = "admin"
name = "Admin"
level = "city"

[[opd]]
code = "alpha"
name = "Alpha"
level = "city"

[[opd]]
code = "beta"
name = "Beta"
level = "city"

[[opd]]
code = "prov"
name = "Province"
level = "province"

[[opd]]
code = "kec_one"
name = "Kecamatan One"
level = "subdistrict"
kecamatan = "Pontianak Barat"

[[opd]]
code = "kec_two"
name = "Kecamatan Two"
level = "subdistrict"
kecamatan = "Pontianak Timur"
"""
)

SMALL_TABLE = """
version = "1.0"

[escalation]
city = ["prov"]

[[opd]]
code = "admin"
categories = ["informasi_publik"]
keywords = ["informasi"]

[[opd]]
code = "alpha"
categories = ["a"]
keywords = ["kata"]

[[opd]]
code = "beta"
categories = ["b"]
keywords = ["frasa"]
"""


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return RoutingTable.load()


def small(text: str = SMALL_TABLE) -> RoutingTable:
    return RoutingTable.from_text(text, registry=SMALL_REGISTRY)


def complaint(
    title: str = "Laporan warga",
    body: str = NEUTRAL_BODY,
    *,
    category: str | None = None,
    kecamatan: str | None = None,
    kelurahan: str | None = None,
    address: str | None = None,
    suggested_opd: str | None = None,
) -> ComplaintReceived:
    place = {"kecamatan": kecamatan, "kelurahan": kelurahan, "address": address}
    return ComplaintReceived(
        title=title,
        body=body,
        category=category,
        location=Location(**place) if any(v is not None for v in place.values()) else None,
        suggested_opd=suggested_opd,
    )


# --- The packaged table and the registry ---------------------------------------------


def test_packaged_table_covers_every_unit_of_the_registry(table: RoutingTable) -> None:
    registry = load_registry()
    assert set(table.opds) == {u.code for u in registry.units}
    assert CITY_UNITS | set(SUBDISTRICTS) | set(OUTSIDE) <= set(table.opds)
    assert table.coordinator.code == registry.coordinator == "diskominfo"
    for code, kecamatan in SUBDISTRICTS.items():
        office = table.opd(code)
        assert office.level == "subdistrict"
        assert office.kecamatan == kecamatan
        assert "pelayanan_kecamatan" in office.categories
        assert office.kelurahan
    for code, (level, category) in OUTSIDE.items():
        assert table.opd(code).level == level
        assert category in table.opd(code).categories


def test_names_and_levels_come_from_the_registry(table: RoutingTable) -> None:
    for unit in load_registry().units:
        opd = table.opd(unit.code)
        assert (opd.name, opd.level, opd.kecamatan) == (unit.name, unit.level, unit.kecamatan)
        assert opd.responsible_for == unit.responsible_for
        assert unit.responsible_for, f"{unit.code} has no responsible_for in the registry"
    assert table.opd("rsud").name == "RSUD Sultan Syarif Mohamad Alkadrie"
    assert table.opd("kementerian").level == "national"


def test_every_unit_but_the_offices_has_keywords(table: RoutingTable) -> None:
    for opd in table.opds.values():
        assert opd.categories, opd.code
        assert opd.keywords or opd.level == "subdistrict", opd.code


def test_all_opd_codes_match_opd_code_pattern(table: RoutingTable) -> None:
    for code, opd in table.opds.items():
        assert re.fullmatch(OPD_CODE, code), code
        assert opd.code == code


def test_the_packaged_table_holds_no_names_or_levels() -> None:
    text = files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
    for entry in tomllib.loads(text)["opd"]:
        assert not {"name", "level", "kecamatan"} & set(entry), entry["code"]


# --- Category and location -------------------------------------------------------------


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
        ("pertanahan", "bpn"),
        ("ketenagakerjaan", "disnaker"),
        ("pasar", "diskumdag"),
        ("jalan_nasional", "bpjn"),
    ],
)
def test_category_routes_to_its_owner(table: RoutingTable, category: str, opd: str) -> None:
    # The body points elsewhere on purpose: a category beats keywords.
    decision = table.decide(complaint(body="Banyak sampah dan jln berlubang", category=category))
    assert decision.opd == opd
    assert decision.opd_name == table.opd(opd).name
    assert decision.level == table.opd(opd).level
    assert decision.rule == f"category:{category}"
    assert decision.confidence == 0.9
    assert decision.rules_version == table.version
    assert decision.excluded == ()
    assert table.opd(opd).name in decision.reason


@pytest.mark.parametrize(
    ("place", "opd"),
    [
        ({"kecamatan": "Pontianak Barat"}, "kec_pontianak_barat"),
        ({"kecamatan": "barat"}, "kec_pontianak_barat"),
        ({"kecamatan": "  PONTIANAK   timur "}, "kec_pontianak_timur"),
        ({"kecamatan": "Kec. Pontianak Utara"}, "kec_pontianak_utara"),
        ({"kecamatan": "PontianakKota"}, "kec_pontianak_kota"),
        ({"kecamatan": "tenggara"}, "kec_pontianak_tenggara"),
        ({"kecamatan": "Pontianak Selatan"}, "kec_pontianak_selatan"),
        ({"kelurahan": "Siantan Hulu"}, "kec_pontianak_utara"),
        ({"kelurahan": "sungai jawi dalam"}, "kec_pontianak_barat"),
        ({"kelurahan": "Sungai Jawi"}, "kec_pontianak_kota"),
        ({"kelurahan": "Kel. Kota Baru"}, "kec_pontianak_selatan"),
        ({"kecamatan": "Sungai Kakap", "kelurahan": "Parit Mayor"}, "kec_pontianak_timur"),
        ({"address": "Jl. Purnama 2, Kel. Parit Tokaya"}, "kec_pontianak_selatan"),
        ({"address": "Gg. Mawar, Kota Pontianak Barat"}, "kec_pontianak_barat"),
    ],
)
def test_subdistrict_service_routes_by_location(
    table: RoutingTable, place: dict[str, str], opd: str
) -> None:
    decision = table.decide(complaint(category="pelayanan_kecamatan", **place))
    assert decision.opd == opd
    assert decision.level == "subdistrict"
    assert decision.rule == f"location:{table.opd(opd).kecamatan}"
    assert decision.confidence == 0.85


def test_a_kelurahan_named_in_the_text_locates_the_office(table: RoutingTable) -> None:
    body = "Pengurusan surat di kantor Kelurahan Bansir Laut lama sekali."
    decision = table.decide(complaint("Surat lama", body, category="pelayanan_kecamatan"))
    assert decision.opd == "kec_pontianak_tenggara"
    # Outside an address a place counts only after "kelurahan", "kecamatan" and the like.
    body = "Surat saya di sini lama sekali, padahal cuma surat biasa ke Tengah."
    decision = table.decide(complaint("Surat lama", body, category="pelayanan_kecamatan"))
    assert decision.rule == "fallback"


@pytest.mark.parametrize("kecamatan", [None, "", "Sungai Kakap"])
def test_subdistrict_service_without_known_kecamatan_falls_through(
    table: RoutingTable, kecamatan: str | None
) -> None:
    decision = table.decide(
        complaint(category="pelayanan_kecamatan", kecamatan=kecamatan, suggested_opd="dinsos")
    )
    assert decision.rule == "suggested"
    assert decision.opd == "dinsos"


def test_unknown_category_falls_through_to_keywords(table: RoutingTable) -> None:
    decision = table.decide(complaint("Air keruh", "Air PDAM keruh sejak pagi.", category="lain"))
    assert decision.opd == "pdam"
    assert decision.rule.startswith("keyword:")


# --- Keywords ----------------------------------------------------------------------------


def test_informal_spelling_routes_by_keyword(table: RoutingTable) -> None:
    decision = table.decide(complaint("Jln berlubang", "Jln berlubang di Gg. Mawar, bahaya!"))
    assert decision.opd == "dpupr"
    assert decision.rule == "keyword:jalan berlubang"
    assert decision.confidence == 0.6
    assert decision.level == "city"


@pytest.mark.parametrize(
    ("title", "body", "opd"),
    [
        ("Air gk ngalir", "air pdam gk ngalir udh 2 hr", "pdam"),
        ("Sampahnya!!!", "Sampahnya, menumpuk; sudah 3 hari.", "dlh"),
        ("Tumpukan sampah", "tumpukan2 sampah blm diangkut", "dlh"),
        ("Gaji tdk dibayar", "gaji sy tdk dibayar 2 bln sm bos", "disnaker"),
        ("Pemadaman lagi", "pemadaman tiap mlm di komplek kami", "pln"),
        ("Kerusakan jembatan", "Jembatannya retak dan kayunya lapuk", "dpupr"),
        ("Pengasapan", "Mohon pengasapan nyamuk DBD di gang kami", "dinkes"),
        ("Asap pabrik", "Asap pembakaran dari pabrik masuk rumah", "dlh"),
    ],
)
def test_keywords_match_stems_and_informal_spellings(
    table: RoutingTable, title: str, body: str, opd: str
) -> None:
    assert table.decide(complaint(title, body)).opd == opd


def test_longer_phrase_spends_its_words(table: RoutingTable) -> None:
    # "lampu jln" is a street light, not a road; "jln" must not count for DPUPR too.
    decision = table.decide(complaint("Lampu jln mati", "Lampu jln di Jl. Tanjungpura mati."))
    assert decision.opd == "dishub"
    assert decision.rule == "keyword:lampu jalan"


def test_keywords_match_whole_words_only(table: RoutingTable) -> None:
    # "simpang" contains "sim" (a police keyword) but is not that word.
    decision = table.decide(complaint("Di simpang empat", "Kejadian di simpang empat kemarin."))
    assert decision.rule == "fallback"


def test_kelurahan_names_are_places_not_keywords(table: RoutingTable) -> None:
    # "Parit Mayor" is a kelurahan, not a drain; the complaint is about its staff.
    decision = table.decide(
        complaint("Staf kelurahan Parit Mayor kasar", "Staf kelurahan Parit Mayor membentak.")
    )
    assert decision.opd == "kec_pontianak_timur"


def test_most_keyword_hits_wins(table: RoutingTable) -> None:
    body = "Parit tersumbat, sampah menumpuk, truk sampah tidak datang, bau busuk."
    decision = table.decide(complaint("Lingkungan kotor", body))
    assert decision.opd == "dlh"


def test_a_keyword_after_a_place_word_counts_half(table: RoutingTable) -> None:
    # The hospital only says where the street vendors are.
    decision = table.decide(complaint("PKL di depan RSUD", "Pedagang di depan RSUD bikin macet"))
    assert decision.opd == "satpolpp"


def hits(t: RoutingTable, body: str) -> dict[str, float]:
    """What each unit's keywords in ``body`` count for."""
    return {c.opd.code: c.hits for c in t._keyword_candidates(complaint(body=body))}


@pytest.mark.parametrize(
    ("title", "body", "opd"),
    [
        ("Mohon izin melapor",
         "Mohon izin melapor, lampu merah di simpang Jl. Merdeka mati sejak kemarin.", "dishub"),
        ("Izin bertanya min",
         "Izin bertanya, kenapa sampah di gang kami tidak diangkut sudah seminggu?", "dlh"),
        ("Mohon dibantu", "Assalamualaikum. Izin min, air PDAM di rumah saya keruh.", "pdam"),
        ("Permisi, izin lapor", "Permisi. Mohon izin, pemadaman listrik tiap malam.", "pln"),
    ],
)  # fmt: skip
def test_a_polite_formula_is_no_keyword(
    table: RoutingTable, title: str, body: str, opd: str
) -> None:
    # "izin" (leave) reads as "perizinan" (permits): in a greeting it is neither.
    decision = table.decide(complaint(title, body))
    assert decision.opd == opd
    assert "perizinan" not in decision.reason


def test_a_permit_is_still_a_permit_after_a_formula(table: RoutingTable) -> None:
    body = "Mohon izin, saya mau tanya izin usaha saya kok belum terbit padahal sudah sebulan."
    decision = table.decide(complaint("Izin usaha belum terbit", body))
    assert decision.opd == "dpmptsp"
    assert decision.rule == "keyword:izin usaha"


@pytest.mark.parametrize(
    ("body", "opd"),
    [
        ("Yth. Kepala Dinas Penanaman Modal dan PTSP Kota Pontianak\n"
         "Saya mau melapor tumpukan sampah di pinggir parit Gg. Mawar.", "dlh"),
        ("Kepada Yth. Bapak Kepala Dinas PU\nAir PDAM di rumah kami keruh sudah seminggu.",
         "pdam"),
        ("Kpd Dinas Perhubungan Kota Pontianak. Tumpukan sampah di gang Mawar tidak diangkut.",
         "dlh"),
        ("Ditujukan kepada Dinas Kesehatan\nKTP elektronik saya belum jadi sudah tiga bulan.",
         "disdukcapil"),
    ],
)  # fmt: skip
def test_the_addressee_line_is_no_topic(table: RoutingTable, body: str, opd: str) -> None:
    # A letter addressed to one office, about another's matter.
    assert table.decide(complaint(body=body)).opd == opd


def test_an_office_named_within_a_sentence_still_counts(table: RoutingTable) -> None:
    body = "Saya sudah melapor kepada Dinas Lingkungan Hidup tapi tidak ada tanggapan."
    assert table.decide(complaint(body=body)).opd == "dlh"


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("Kerusakan jalan di Gg. Mawar", NEUTRAL_BODY),
        ("Rusaknya jalan kompleks", "Rusaknya jalan di kompleks kami membuat warga susah lewat."),
        ("Laporan warga", "Jalan di depan rumah saya rusak parah, banyak motor jatuh."),
        ("Laporan warga", "Jalannya sudah lama rusak, mohon diperbaiki."),
    ],
)
def test_a_keyword_matches_its_words_in_any_order(
    table: RoutingTable, title: str, body: str
) -> None:
    decision = table.decide(complaint(title, body))
    assert decision.opd == "dpupr"
    assert decision.rule == "keyword:jalan rusak"


def test_scattered_words_count_a_little_less_than_the_phrase() -> None:
    t = small(SMALL_TABLE.replace('keywords = ["kata"]', 'keywords = ["kata kunci"]'))
    assert hits(t, "ada kata kunci di sini") == {"alpha": 1}
    assert hits(t, "ada kunci kata di sini") == {"alpha": 0.8}
    assert hits(t, "kata satu dua tiga empat kunci") == {"alpha": 0.8}
    # Too far apart, in another sentence, or "at" a place in reverse order: no keyword.
    assert hits(t, "kata satu dua tiga empat lima kunci") == {}
    assert hits(t, "ada kata. Kunci hilang") == {}
    assert hits(t, "kunci di kata") == {}
    assert hits(t, "kata di kunci") == {"alpha": 0.8}
    # Each word is spent once: three words, one keyword.
    assert hits(t, "kunci kata lalu kunci") == {"alpha": 0.8}
    # The phrase as written beats its scattered words.
    assert t.decide(complaint(body="ada kunci kata dan frasa")).opd == "beta"
    assert t.decide(complaint(body="ada kata kunci dan frasa")).opd == "alpha"


def test_a_longer_phrase_keeps_its_words_from_scattered_keywords(table: RoutingTable) -> None:
    # "lampu jalan" spends "jalan": no road damage is read from "jalan ... rusak".
    decision = table.decide(complaint("Lampu jalan rusak", "Lampu jalan rusak di Jl. Tanjungpura."))
    assert decision.opd == "dishub"
    assert decision.rule == "keyword:lampu jalan"
    t = small(
        SMALL_TABLE.replace('keywords = ["kata"]', 'keywords = ["kunci pintu"]').replace(
            'keywords = ["frasa"]', 'keywords = ["pintu kunci rusak"]'
        )
    )
    assert hits(t, "pintu kunci rusak") == {"beta": 1}
    # Phrases as written are read first: a longer keyword scattered does not take them.
    assert hits(t, "rusak kunci pintu") == {"alpha": 1}


def test_a_keyword_in_another_order_is_one_keyword() -> None:
    text = SMALL_TABLE.replace('keywords = ["frasa"]', 'keywords = ["kunci kata"]')
    with pytest.raises(ValueError, match="in another order"):
        small(text.replace('keywords = ["kata"]', 'keywords = ["kata kunci"]'))
    # Within one unit they are two spellings of one keyword.
    one = small(
        SMALL_TABLE.replace('keywords = ["kata"]', 'keywords = ["kata kunci", "kunci kata"]')
    )
    assert hits(one, "kata kunci, lalu kunci itu kata") == {"alpha": 1.8}


@pytest.mark.parametrize("keyword", ["mohon izin", "assalamualaikum", "kepada dinas"])
def test_a_keyword_that_reads_as_a_formula_or_addressee_is_rejected(keyword: str) -> None:
    with pytest.raises(ValueError, match="polite formula or an addressee"):
        small(SMALL_TABLE.replace('keywords = ["frasa"]', f'keywords = ["{keyword}"]'))


def test_the_rest_of_a_place_phrase_counts_less_too(table: RoutingTable) -> None:
    # The school only says where the rubbish is.
    body = "Di depan gedung sekolah negeri ada tumpukan sampah."
    assert table.decide(complaint(body=body)).opd == "dlh"
    t = small()
    assert hits(t, "di depan kata") == {"alpha": 0.5}
    assert hits(t, "di depan gedung kata") == {"alpha": 0.75}
    assert hits(t, "di depan gedung lama kata") == {"alpha": 0.75}
    # Up to punctuation, a word that ends the place, or a few words.
    assert hits(t, "di depan gedung, kata") == {"alpha": 1}
    assert hits(t, "di gang yang kata") == {"alpha": 1}
    assert hits(t, "di depan rumah saya kata") == {"alpha": 1}
    assert hits(t, "di satu dua tiga kata") == {"alpha": 1}


def test_keyword_tie_goes_to_the_first_mentioned_then_file_order() -> None:
    t = small()
    first = t.decide(complaint("frasa dan kata", "ada frasa dan ada kata"))
    assert first.opd == "beta"
    assert first.confidence == 0.4
    assert "mentioned first" in first.reason
    assert t.decide(complaint("kata dan frasa", "ada kata dan ada frasa")).opd == "alpha"
    assert t.decide(complaint("frasa frasa kata", "frasa dan kata saja")).opd == "beta"


def test_keyword_tie_goes_to_the_suggestion(table: RoutingTable) -> None:
    decision = small().decide(
        complaint("frasa dan kata", "ada frasa dan ada kata", suggested_opd="alpha")
    )
    assert decision.opd == "alpha"
    assert decision.confidence == 0.7
    assert "suggested it too" in decision.reason


def test_neighbourhood_matters_go_to_the_office_of_the_place(table: RoutingTable) -> None:
    body = "Ketua RT minta uang Rp50 ribu untuk surat pengantar."
    decision = table.decide(complaint("Pungutan surat pengantar", body, kelurahan="Mariana"))
    assert decision.opd == "kec_pontianak_kota"
    assert decision.rule == "keyword:surat pengantar"
    assert "neighbourhood matter" in decision.reason
    # Without a place, the neighbourhood keywords cannot choose an office.
    assert table.decide(complaint("Pungutan surat pengantar", body)).rule == "fallback"


# --- Suggestion and fallback -------------------------------------------------------------


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


# --- Not our authority -------------------------------------------------------------------


def test_a_declined_category_goes_up_a_level(table: RoutingTable) -> None:
    road = complaint("Jalan rusak", "Jalan Adi Sucipto rusak parah", category="jalan")
    decision = table.decide(road, frozenset({"dpupr"}))
    assert decision.opd == "pemprov_kalbar"
    assert decision.level == "province"
    assert decision.rule == "escalation:dpupr"
    assert decision.confidence == 0.9
    assert decision.excluded == ("dpupr",)
    assert "not their authority" in decision.reason
    assert table.opd("dpupr").name in decision.reason

    # A road's own chain: after the province, the national roads office.
    national = table.decide(road, frozenset({"dpupr", "pemprov_kalbar"}))
    assert national.opd == "bpjn"
    assert national.level == "national"
    assert national.excluded == ("dpupr", "pemprov_kalbar")

    everyone = table.decide(road, frozenset({"dpupr", "pemprov_kalbar", "bpjn"}))
    assert everyone.opd == "diskominfo"
    assert everyone.rule == "fallback"


def test_a_unit_without_a_chain_of_its_own_follows_its_level(table: RoutingTable) -> None:
    parking = complaint(category="parkir")
    assert table.decide(parking, frozenset({"dishub"})).opd == "pemprov_kalbar"
    assert table.decide(parking, frozenset({"dishub", "pemprov_kalbar"})).opd == "kementerian"


def test_a_chain_must_name_units_and_not_the_unit_itself() -> None:
    text = packaged_text()
    chain = 'escalation = ["pemprov_kalbar", "bpjn"]'
    with pytest.raises(ValueError, match="not a unit"):
        RoutingTable.from_text(text.replace(chain, 'escalation = ["pemprov_kalbar", "nowhere"]'))
    with pytest.raises(ValueError, match="the unit itself"):
        RoutingTable.from_text(text.replace(chain, 'escalation = ["dpupr"]'))


def test_a_declined_provincial_category_goes_to_the_ministries(table: RoutingTable) -> None:
    decision = table.decide(complaint(category="sma_smk"), frozenset({"pemprov_kalbar"}))
    assert decision.opd == "kementerian"


@pytest.mark.parametrize("owner", ["pln", "bpjs_kesehatan", "polri"])
def test_bodies_outside_the_city_have_no_level_above(table: RoutingTable, owner: str) -> None:
    category = OUTSIDE[owner][1]
    decision = table.decide(complaint(category=category), frozenset({owner}))
    assert decision.opd == "diskominfo"
    assert decision.excluded == (owner,)


def test_a_declining_office_goes_to_the_city(table: RoutingTable) -> None:
    c = complaint(category="pelayanan_kecamatan", kecamatan="Pontianak Barat")
    decision = table.decide(c, frozenset({"kec_pontianak_barat"}))
    assert decision.opd == "diskominfo"


def test_a_declined_keyword_winner_gives_way_to_the_next_candidate(table: RoutingTable) -> None:
    c = complaint("Sampah dan parit", "Sampah menumpuk dan sampah berbau, parit tersumbat")
    assert table.decide(c).opd == "dlh"
    decision = table.decide(c, frozenset({"dlh"}))
    assert decision.opd == "dpupr"
    assert decision.rule.startswith("keyword:")
    # No candidate left: up a level from the best one.
    decision = table.decide(c, frozenset({"dlh", "dpupr"}))
    assert decision.opd == "pemprov_kalbar"
    assert decision.rule == "escalation:dlh"
    assert decision.confidence == 0.5


def test_a_declined_suggestion_is_not_used(table: RoutingTable) -> None:
    decision = table.decide(complaint(suggested_opd="dinsos"), frozenset({"dinsos"}))
    assert decision.opd == "diskominfo"


def test_the_coordinator_is_the_last_resort_even_if_excluded(table: RoutingTable) -> None:
    decision = table.decide(complaint(), frozenset({"diskominfo"}))
    assert decision.opd == "diskominfo"
    assert decision.excluded == ("diskominfo",)


def test_excluded_codes_unknown_to_the_registry_are_harmless(table: RoutingTable) -> None:
    decision = table.decide(complaint(category="sampah"), frozenset({"nobody"}))
    assert decision.opd == "dlh"
    assert decision.excluded == ("nobody",)


def test_an_excluded_unit_is_never_chosen(table: RoutingTable) -> None:
    # Keep declining whatever was chosen: the complaint wanders up and ends with the
    # coordinator, never at an OPD that already declined.
    samples = [
        complaint("Jln berlubang", "jln berlubang dan parit tersumbat, sampah numpuk"),
        complaint(category="jalan", kelurahan="Mariana", suggested_opd="dishub"),
        complaint("PKL liar", "PKL di trotoar depan RSUD bikin macet", suggested_opd="dinkes"),
        complaint("Surat pengantar", "Pak RT minta uang surat pengantar", kelurahan="Tengah"),
        complaint(category="listrik", suggested_opd="pdam"),
    ]
    for c in samples:
        exclude: frozenset[str] = frozenset()
        for _ in range(len(table.opds) + 1):
            decision = table.decide(c, exclude)
            assert decision.opd not in exclude or decision.opd == "diskominfo"
            if decision.opd == "diskominfo":
                break
            exclude |= {decision.opd}
        else:
            pytest.fail(f"never reached the coordinator: {c.title}")


# --- The decision as an event ------------------------------------------------------------


def test_decision_fits_the_complaint_routed_event(table: RoutingTable) -> None:
    for c, exclude in (
        (complaint(category="jalan"), frozenset()),
        (complaint("Jln berlubang", "jln berlubang parah"), frozenset({"dpupr", "alpha"})),
    ):
        decision: Decision = table.decide(c, exclude)
        routed = ComplaintRouted(**dataclasses.asdict(decision))
        assert routed.opd == decision.opd
        assert routed.level == decision.level
        assert routed.excluded == sorted(exclude)
        assert isinstance(routed.excluded, list)


# --- Table validation --------------------------------------------------------------------


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


def test_the_small_table_uses_the_small_registry() -> None:
    t = small()
    assert t.coordinator.code == "admin"
    assert t.opd("alpha").name == "Alpha"
    assert set(t.opds) == {"admin", "alpha", "beta", "prov", "kec_one", "kec_two"}
    assert t.escalation("city") == ("prov",)
    assert t.escalation("province") == ()


def test_duplicate_category_is_rejected() -> None:
    text = SMALL_TABLE.replace('categories = ["b"]', 'categories = ["b", "a"]')
    with pytest.raises(ValueError, match="exactly one OPD"):
        small(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('keywords = ["frasa"]', 'keywords = ["KATA!"]', "already a keyword"),
        ('keywords = ["frasa"]', 'keywords = ["katanya"]', "both read as 'kata'"),
        ('code = "beta"', 'code = "gamma"', "a unit of the OPD registry"),
        ('code = "beta"', 'code = "alpha"', "appears twice"),
        ('code = "beta"', 'code = "beta"\nname = "Beta"', "come from the OPD registry"),
        ('code = "beta"', 'code = "beta"\nlevel = "city"', "come from the OPD registry"),
        ('categories = ["b"]', 'categories = ["B"]', "category"),
        ('categories = ["b"]', 'category = ["b"]', "unknown field"),
        ('categories = ["b"]', 'categories = ["b"]\nkelurahan = ["Mariana"]', "kelurahan"),
        ('version = "1.0"', "", "version"),
        ('version = "1.0"', 'version = "1.0"\ncoordinator = "nobody"', "coordinator"),
        ('version = "1.0"', 'version = "1.0"\nowner = "x"', "top-level"),
        ('city = ["prov"]', 'city = ["nowhere"]', "escalation"),
        ('city = ["prov"]', 'town = ["prov"]', "escalation level"),
        ("[[opd]]", "[[opd]]\n[[opd]]", "a unit of the OPD registry"),
        ('version = "1.0"', 'version = "1.0\n', "TOML"),
    ],
)
def test_malformed_tables_are_rejected(old: str, new: str, message: str) -> None:
    assert old in SMALL_TABLE
    with pytest.raises(ValueError, match=message):
        small(SMALL_TABLE.replace(old, new, 1))


def test_spellings_of_one_keyword_are_one_phrase() -> None:
    text = SMALL_TABLE.replace('keywords = ["kata"]', 'keywords = ["kata", "katanya"]')
    decision = small(text).decide(complaint("katanya", "katanya begitu kata orang"))
    assert decision.opd == "alpha"
    assert decision.rule == "keyword:kata"


def test_offices_share_a_category_and_kelurahan_find_them() -> None:
    offices = """
[territorial]
keywords = ["ketua rt"]

[[opd]]
code = "kec_one"
categories = ["pelayanan_kecamatan"]
kelurahan = ["Sungai Beliung"]

[[opd]]
code = "kec_two"
categories = ["pelayanan_kecamatan"]
kelurahan = ["Saigon"]
"""
    # [territorial] must precede the [[opd]] entries of SMALL_TABLE in TOML: put it first.
    t = small(SMALL_TABLE.replace('version = "1.0"', 'version = "1.0"\n' + offices, 1))
    by_kecamatan = complaint(category="pelayanan_kecamatan", kecamatan="timur")
    assert t.decide(by_kecamatan).opd == "kec_two"
    by_kelurahan = complaint(category="pelayanan_kecamatan", kelurahan="Sungai Beliung")
    assert t.decide(by_kelurahan).opd == "kec_one"
    rt = complaint("Ketua RT", "Ketua RT tidak ramah", kelurahan="saigon")
    assert t.decide(rt).opd == "kec_two"
    with pytest.raises(ValueError, match="belongs to both"):
        small(
            SMALL_TABLE.replace(
                'version = "1.0"', 'version = "1.0"\n' + offices.replace("Saigon", "Sungai Beliung")
            )
        )


def test_version_is_file_version_plus_text_hash() -> None:
    digest = hashlib.sha256(SMALL_TABLE.encode()).hexdigest()[:8]
    assert small().version == f"1.0+{digest}"
    # Any edit changes the version, even if nobody bumped the number.
    edited = small(SMALL_TABLE + "\n# edited\n")
    assert edited.version.startswith("1.0+")
    assert edited.version != f"1.0+{digest}"


def test_packaged_version_contains_hash_of_the_file(table: RoutingTable) -> None:
    text = files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    number = tomllib.loads(text)["version"]
    assert table.version == f"{number}+{digest}"
    assert re.fullmatch(r"\d{4}\.\d+\.\d+\+[0-9a-f]{8}", table.version)


def test_load_reads_a_given_path(tmp_path) -> None:
    path = tmp_path / "table.toml"
    path.write_text(SMALL_TABLE, encoding="utf-8")
    assert RoutingTable.load(path, registry=SMALL_REGISTRY).version == small().version


def test_opds_is_a_copy(table: RoutingTable) -> None:
    table.opds.clear()
    assert table.opd("dpupr") is not None


def packaged_text() -> str:
    return files("lapor.router").joinpath("routing_table.toml").read_text("utf-8")
