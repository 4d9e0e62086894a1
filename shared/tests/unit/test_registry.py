"""The OPD registries of the packaged deployments, what they describe, and choosing one."""

from __future__ import annotations

import pytest

from lapor.shared.registry import (
    DEFAULT_DEPLOYMENT,
    DEPLOYMENT_ENV,
    KINDS,
    LEVELS,
    Deployment,
    Registry,
    deployment_name,
    deployments,
    load_registry,
)

KUBU_RAYA_OFFICES = {
    "kec_sungai_raya": "Sungai Raya",
    "kec_sungai_kakap": "Sungai Kakap",
    "kec_sungai_ambawang": "Sungai Ambawang",
    "kec_rasau_jaya": "Rasau Jaya",
    "kec_kuala_mandor_b": "Kuala Mandor B",
    "kec_teluk_pakedai": "Teluk Pakedai",
    "kec_kubu": "Kubu",
    "kec_terentang": "Terentang",
    "kec_batu_ampar": "Batu Ampar",
}

SMALL = """
version = "1"
coordinator = "admin"
{deployment}
[[opd]]
code = "admin"
name = "Admin"
level = "city"
"""


def test_the_packaged_deployments() -> None:
    assert deployments() == ("kabupaten_kubu_raya", "kota_pontianak")
    assert DEFAULT_DEPLOYMENT == "kota_pontianak"


@pytest.mark.parametrize(
    ("deployment", "name", "kind"),
    [
        ("kota_pontianak", "Kota Pontianak", "city"),
        ("kabupaten_kubu_raya", "Kabupaten Kubu Raya", "regency"),
    ],
)
def test_each_registry_says_what_it_describes(deployment: str, name: str, kind: str) -> None:
    registry = load_registry(deployment)
    assert registry.deployment == Deployment(name=name, kind=kind)
    assert registry.coordinator == "diskominfo"
    for unit in registry.units:
        assert unit.level in LEVELS
        assert unit.responsible_for, unit.code
        assert (unit.level == "subdistrict") == (unit.kecamatan is not None), unit.code


def test_kubu_raya_has_pontianaks_units_with_its_own_offices_and_dpmd() -> None:
    pontianak, kubu_raya = load_registry("kota_pontianak"), load_registry("kabupaten_kubu_raya")
    city_offices = {u.code for u in pontianak.units if u.level == "subdistrict"}
    assert city_offices and all(code.startswith("kec_pontianak_") for code in city_offices)
    codes = {u.code for u in kubu_raya.units}
    assert codes == {u.code for u in pontianak.units} - city_offices | set(KUBU_RAYA_OFFICES) | {
        "dpmd"
    }
    for unit in pontianak.units:
        if unit.code not in city_offices:
            assert kubu_raya.get(unit.code).level == unit.level, unit.code
    for code, kecamatan in KUBU_RAYA_OFFICES.items():
        office = kubu_raya.get(code)
        assert (office.level, office.kecamatan, office.name) == (
            "subdistrict",
            kecamatan,
            f"Kecamatan {kecamatan}",
        )
    assert (
        kubu_raya.get("dpmd").name == "Dinas Pemberdayaan Masyarakat dan Desa Kabupaten Kubu Raya"
    )
    assert kubu_raya.get("dpmd").level == "city"
    assert kubu_raya.get("dpupr").name == (
        "Dinas Pekerjaan Umum dan Penataan Ruang Kabupaten Kubu Raya"
    )
    assert kubu_raya.get("rsud").name == "RSUD Kubu Raya"
    assert kubu_raya.get("pdam").name == "Perumda Air Minum Tirta Raya"
    assert kubu_raya.get("bpn").name.startswith("Kantor Pertanahan Kabupaten Kubu Raya")
    assert kubu_raya.get("diskominfo").name.endswith("Kabupaten Kubu Raya")
    for code in ("pemprov_kalbar", "pln", "bpjs_kesehatan", "ojk", "kementerian"):
        assert kubu_raya.get(code) == pontianak.get(code)


def test_a_registry_without_a_deployment_describes_a_city() -> None:
    registry = Registry.from_text(SMALL.format(deployment=""))
    assert registry.deployment == Deployment(name="", kind="city")
    with_name = Registry.from_text(SMALL.format(deployment='[deployment]\nname = "Kota X"\n'))
    assert with_name.deployment == Deployment(name="Kota X", kind="city")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('[deployment]\nname = "Kota X"\nkind = "village"\n', "kind 'village' is not one of"),
        ('[deployment]\nkind = "city"\n', r"\[deployment\] needs a name"),
        ('[deployment]\nname = "Kota X"\narea = 12\n', "takes only 'name' and 'kind'"),
    ],
)
def test_a_bad_deployment_is_refused(section: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Registry.from_text(SMALL.format(deployment=section))


def test_the_kinds() -> None:
    assert KINDS == ("city", "regency", "province")
    with pytest.raises(ValueError, match="kind"):
        Deployment(name="Provinsi X", kind="country")


def test_each_deployment_is_read_once() -> None:
    assert load_registry("kabupaten_kubu_raya") is load_registry("kabupaten_kubu_raya")
    assert load_registry("kota_pontianak") is not load_registry("kabupaten_kubu_raya")


def test_the_environment_chooses_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEPLOYMENT_ENV, raising=False)
    assert load_registry() is load_registry("kota_pontianak")
    monkeypatch.setenv(DEPLOYMENT_ENV, "kabupaten_kubu_raya")
    assert deployment_name() == "kabupaten_kubu_raya"
    assert load_registry() is load_registry("kabupaten_kubu_raya")
    assert load_registry("kota_pontianak").deployment.name == "Kota Pontianak"  # explicit wins


def test_an_unknown_deployment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"unknown deployment 'kota_atlantis'.*kota_pontianak"):
        load_registry("kota_atlantis")
    monkeypatch.setenv(DEPLOYMENT_ENV, "kota_atlantis")
    with pytest.raises(
        ValueError, match=f"unknown deployment 'kota_atlantis' \\({DEPLOYMENT_ENV}\\)"
    ):
        load_registry()
