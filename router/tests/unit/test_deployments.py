"""The packaged deployments' routing tables: Kota Pontianak's, and Kabupaten Kubu Raya's
built on it (``base``); choosing one (``LAPOR_DEPLOYMENT``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lapor.router.domain import RoutingTable
from lapor.router.table import packaged_table_text, packaged_tables, parse_table
from lapor.services.settings import Settings
from lapor.shared.events import ComplaintReceived, Location
from lapor.shared.registry import DEPLOYMENT_ENV, deployments, load_registry

KUBU_RAYA = "kabupaten_kubu_raya"
VILLAGES = {
    "kec_sungai_raya": ("Sungai Raya", ["Kapur", "Arang Limbung", "Sungai Raya Dalam"]),
    "kec_sungai_kakap": ("Sungai Kakap", ["Punggur Besar", "Jeruju Besar", "Kalimas"]),
    "kec_sungai_ambawang": ("Sungai Ambawang", ["Ambawang Kuala", "Pancaroba", "Korek"]),
    "kec_rasau_jaya": ("Rasau Jaya", ["Rasau Jaya Umum", "Rasau Jaya Dua", "Bintang Mas"]),
    "kec_kuala_mandor_b": ("Kuala Mandor B", ["Kuala Mandor A", "Retok", "Sungai Enau"]),
    "kec_teluk_pakedai": ("Teluk Pakedai", ["Teluk Pakedai Hulu", "Selat Remis"]),
    "kec_kubu": ("Kubu", ["Olak Olak Kubu", "Jangkang Satu", "Sungai Selamat"]),
    "kec_terentang": ("Terentang", ["Terentang Hilir", "Teluk Empening"]),
    "kec_batu_ampar": ("Batu Ampar", ["Padang Tikar Satu", "Nipah Panjang", "Teluk Nibung"]),
}
NEUTRAL_BODY = "Mohon ditindaklanjuti secepatnya, terima kasih banyak."


@pytest.fixture(scope="module")
def kubu_raya() -> RoutingTable:
    return RoutingTable.load(deployment=KUBU_RAYA)


@pytest.fixture(scope="module")
def pontianak() -> RoutingTable:
    return RoutingTable.load(deployment="kota_pontianak")


def complaint(
    title: str = "Laporan warga",
    body: str = NEUTRAL_BODY,
    *,
    category: str | None = None,
    location: Location | None = None,
) -> ComplaintReceived:
    return ComplaintReceived(title=title, body=body, category=category, location=location)


# --- Every packaged deployment -------------------------------------------------------


def test_every_packaged_deployment_has_a_table() -> None:
    assert packaged_tables() == deployments() == ("kabupaten_kubu_raya", "kota_pontianak")


@pytest.mark.parametrize("deployment", deployments())
def test_each_table_covers_its_registry(deployment: str) -> None:
    table = RoutingTable.load(deployment=deployment)
    registry = load_registry(deployment)
    assert set(table.opds) == {u.code for u in registry.units}
    for unit in registry.units:
        assert table.opd(unit.code).unit is unit
    assert table.coordinator.unit is registry.get("diskominfo")
    for rules in table.opds.values():
        assert rules.categories, rules.code
        if rules.level == "subdistrict":
            assert "pelayanan_kecamatan" in rules.categories and rules.kelurahan, rules.code


def test_pontianaks_table_is_the_default_one(pontianak: RoutingTable) -> None:
    assert pontianak.version == RoutingTable.load().version
    assert not any(code.startswith("kec_sungai") or code == "dpmd" for code in pontianak.opds)


# --- Kabupaten Kubu Raya --------------------------------------------------------------


def test_kubu_raya_starts_from_pontianaks_table(
    kubu_raya: RoutingTable, pontianak: RoutingTable
) -> None:
    assert not any(code.startswith("kec_pontianak") for code in kubu_raya.opds)
    for level in ("subdistrict", "city", "province", "national", "soe"):
        assert kubu_raya.escalation(level) == pontianak.escalation(level)
    for code, rules in pontianak.opds.items():
        if rules.level != "subdistrict":
            mine = kubu_raya.opd(code)
            assert (mine.categories, mine.keywords, mine.escalation) == (
                rules.categories,
                rules.keywords,
                rules.escalation,
            ), code
    assert kubu_raya.opd("dpupr").escalation == ("pemprov_kalbar", "bpjn")
    assert kubu_raya.coordinator.name == "Dinas Komunikasi dan Informatika Kabupaten Kubu Raya"


def test_kubu_raya_has_its_offices_and_their_villages(kubu_raya: RoutingTable) -> None:
    offices = {c: r for c, r in kubu_raya.opds.items() if r.level == "subdistrict"}
    assert set(offices) == set(VILLAGES)
    for code, (kecamatan, villages) in VILLAGES.items():
        assert offices[code].kecamatan == kecamatan
        assert offices[code].categories == ("pelayanan_kecamatan",)
        assert set(villages) <= set(offices[code].kelurahan)
        for village in villages:
            found = kubu_raya.office_for(Location(kelurahan=village))
            assert found is not None and found.code == code, village
    dpmd = kubu_raya.opd("dpmd")
    assert set(dpmd.categories) == {"pemerintahan_desa", "dana_desa"}
    assert {"kepala desa", "kades", "dana desa", "add", "bumdes", "pilkades"} <= set(dpmd.keywords)


@pytest.mark.parametrize(
    ("title", "body"),
    [
        (
            "Kepala desa jarang masuk kantor",
            "Kades kami jarang ada di kantor desa, urus surat susah.",
        ),
        ("Dana desa tidak transparan", "Penggunaan dana desa dan APBDes tidak pernah diumumkan."),
        ("BUMDes tutup", "BUMDes kami dapat modal ratusan juta tapi usahanya tidak jalan."),
        ("Pilkades ditunda", "Pemilihan kepala desa di desa kami ditunda terus tanpa kejelasan."),
        ("Perangkat desa diberhentikan", "Sekdes dan perangkat desa diganti sepihak oleh kades."),
        ("ADD belum cair", "Honor RT dari ADD belum dibayar enam bulan."),
    ],
)
def test_village_government_goes_to_dpmd(kubu_raya: RoutingTable, title: str, body: str) -> None:
    decision = kubu_raya.decide(complaint(title, body))
    assert decision.opd == "dpmd", decision.reason
    assert decision.opd_name == "Dinas Pemberdayaan Masyarakat dan Desa Kabupaten Kubu Raya"


@pytest.mark.parametrize("category", ["pemerintahan_desa", "dana_desa"])
def test_the_village_categories_are_dpmds(kubu_raya: RoutingTable, category: str) -> None:
    assert kubu_raya.decide(complaint(category=category)).opd == "dpmd"


def test_a_letter_from_a_named_village_goes_to_its_kecamatan(kubu_raya: RoutingTable) -> None:
    decision = kubu_raya.decide(
        complaint(
            "Surat keterangan tidak mampu belum selesai",
            "Saya warga Desa Punggur Besar sudah dua minggu mengurus surat keterangan tidak "
            "mampu untuk sekolah anak, belum juga selesai.",
        )
    )
    assert decision.opd == "kec_sungai_kakap", decision.reason
    assert "kecamatan Sungai Kakap" in decision.reason


def test_the_kecamatan_category_goes_by_village(kubu_raya: RoutingTable) -> None:
    decision = kubu_raya.decide(
        complaint(category="pelayanan_kecamatan", location=Location(address="Desa Retok"))
    )
    assert decision.opd == "kec_kuala_mandor_b"


def test_the_regencys_name_is_no_kecamatan(kubu_raya: RoutingTable) -> None:
    assert kubu_raya.office_for(Location(address="Jl. Adisucipto Km 10, Kubu Raya")) is None
    found = kubu_raya.office_for(Location(address="Desa Kubu, Kabupaten Kubu Raya"))
    assert found is not None and found.code == "kec_kubu"
    found = kubu_raya.office_for(None, "Kantor camat di Kecamatan Kubu tutup")
    assert found is not None and found.code == "kec_kubu"


def test_a_road_goes_to_the_regencys_public_works(kubu_raya: RoutingTable) -> None:
    decision = kubu_raya.decide(
        complaint(
            "Jalan berlubang", "Jalan di depan pasar berlubang besar, sudah banyak yang jatuh."
        )
    )
    assert decision.opd == "dpupr"
    assert decision.opd_name == "Dinas Pekerjaan Umum dan Penataan Ruang Kabupaten Kubu Raya"
    assert kubu_raya.decide(complaint(category="jalan")).opd_name == decision.opd_name


def test_the_base_is_part_of_the_version(kubu_raya: RoutingTable) -> None:
    text = packaged_table_text(KUBU_RAYA)
    registry = load_registry(KUBU_RAYA)
    assert parse_table(text, registry=registry).version == kubu_raya.version
    assert kubu_raya.version.startswith("2026.12.1+")


# --- base: the format ----------------------------------------------------------------

REGENCY = load_registry(KUBU_RAYA)
PONTIANAK = load_registry("kota_pontianak")


def test_a_table_on_a_base_replaces_and_adds_entries_by_code() -> None:
    table = RoutingTable.from_text(
        """
version = "1"
base = "kota_pontianak"

[escalation]
city = ["kementerian"]

[territorial]
keywords = ["surat rekomendasi", "surat pengantar"]

[[opd]]
code = "dpupr"
categories = ["jalan"]
keywords = ["dpupr", "jalan rusak"]

[[opd]]
code = "dpmd"
categories = ["dana_desa"]
keywords = ["dana desa"]
""",
        registry=REGENCY,
    )
    dpupr = table.opd("dpupr")
    assert (dpupr.categories, dpupr.keywords, dpupr.escalation) == (
        ("jalan",),
        ("dpupr", "jalan rusak"),
        (),
    )
    assert table.decide(complaint(category="drainase")).opd == "diskominfo"  # not inherited
    assert table.decide(complaint(category="sampah")).opd == "dlh"  # inherited
    assert table.decide(complaint("Dana desa", "Dana desa dipotong")).opd == "dpmd"
    assert table.escalation("city") == ("kementerian",)
    assert table.escalation("province") == ("kementerian",)
    # Replaced in place, added at the end: the order that breaks ties.
    order = list(table.opds)
    assert order.index("dpupr") == 0
    assert order.index("dpmd") == order.index("kementerian") + 1


def test_a_table_on_a_base_drops_the_units_its_registry_lacks() -> None:
    table = RoutingTable.from_text('version = "1"\nbase = "kota_pontianak"\n', registry=REGENCY)
    assert "kec_pontianak_barat" not in table.opds
    assert table.opd("dpupr").keywords == RoutingTable.load().opd("dpupr").keywords
    # Without offices of its own, a place decides nothing; the base's keywords still count.
    assert table.decide(complaint(category="pelayanan_kecamatan")).opd == "diskominfo"


def test_a_table_on_its_own_base_routes_as_the_base() -> None:
    same = RoutingTable.from_text('version = "9"\nbase = "kota_pontianak"\n', registry=PONTIANAK)
    packaged = RoutingTable.load(deployment="kota_pontianak")
    assert same.opds == packaged.opds
    for body in ("Jalan berlubang di depan pasar", "Sampah menumpuk", "Surat pengantar lurah"):
        c = complaint(body, body, location=Location(kelurahan="Mariana"))
        assert same.decide(c).opd == packaged.decide(c).opd


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'version = "1"\nbase = "kota_atlantis"\n',
            "base 'kota_atlantis' is not a packaged table; the packaged tables are "
            "kabupaten_kubu_raya, kota_pontianak",
        ),
        ('version = "1"\nbase = 3\n', "'base' must name a packaged table"),
        ('version = "1"\nbase = "kabupaten_kubu_raya"\n', "has a base itself"),
        (
            'version = "1"\nbase = "kota_pontianak"\n\n'
            '[[opd]]\ncode = "dpupr"\ncategories = ["jalan"]\n\n'
            '[[opd]]\ncode = "dpupr"\nkeywords = ["aspal"]\n',
            "OPD code 'dpupr' appears twice .*base 'kota_pontianak'",
        ),
        (
            'version = "1"\nbase = "kota_pontianak"\n\n'
            '[[opd]]\ncode = "kec_pontianak_barat"\ncategories = ["pelayanan_kecamatan"]\n',
            "'kec_pontianak_barat': code must be a unit of the OPD registry",
        ),
        (
            'version = "1"\nbase = "kota_pontianak"\n\n'
            '[[opd]]\ncode = "dpmd"\nkeywords = ["jalan berlubang"]\n',
            "keyword 'jalan berlubang' of 'dpmd' is already a keyword of 'dpupr'",
        ),
        (
            'version = "1"\nbase = "kota_pontianak"\n\n'
            '[[opd]]\ncode = "dpmd"\ncategories = ["sampah"]\n',
            "category 'sampah' must map to exactly one OPD",
        ),
    ],
)
def test_a_bad_base_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoutingTable.from_text(text, registry=REGENCY)


def test_a_table_without_a_base_still_needs_entries() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RoutingTable.from_text('version = "1"\n', registry=REGENCY)


# --- Choosing the deployment ----------------------------------------------------------


def test_the_setting_selects_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEPLOYMENT_ENV, raising=False)
    assert Settings().deployment == "kota_pontianak"
    assert "dpmd" not in RoutingTable.load().opds
    monkeypatch.setenv(DEPLOYMENT_ENV, KUBU_RAYA)
    assert Settings().deployment == KUBU_RAYA
    assert load_registry().deployment.kind == "regency"
    table = RoutingTable.load()
    assert "dpmd" in table.opds and "kec_pontianak_barat" not in table.opds
    assert RoutingTable.from_text(packaged_table_text(KUBU_RAYA)).version == table.version
    # Explicit beats the environment: a benchmark loads both in one process.
    assert "kec_pontianak_barat" in RoutingTable.load(deployment="kota_pontianak").opds


def test_an_unknown_deployment_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEPLOYMENT_ENV, "kota_atlantis")
    with pytest.raises(ValidationError, match="unknown deployment 'kota_atlantis'"):
        Settings()
    with pytest.raises(ValueError, match="unknown deployment 'kota_atlantis'"):
        RoutingTable.load()
    with pytest.raises(ValidationError, match="unknown deployment"):
        Settings(deployment="nowhere")
