"""Reading the routing table into indexed data, apart from the decisions made with it."""

from __future__ import annotations

import dataclasses

import pytest

from lapor.router.domain import RoutingTable
from lapor.router.places import kecamatan_key, kecamatan_keys, place_key
from lapor.router.table import IndexedTable, parse_table, read_table
from lapor.router.unit_rules import UnitRules
from lapor.shared.events import ComplaintReceived
from lapor.shared.registry import load_registry


@pytest.fixture(scope="module")
def indexed() -> IndexedTable:
    return read_table()


def test_the_rules_of_a_unit_hold_the_registry_unit_itself(indexed: IndexedTable) -> None:
    registry = load_registry()
    assert set(indexed.units) == {u.code for u in registry.units}
    for unit in registry.units:
        rules = indexed.units[unit.code]
        assert rules.unit is registry.get(unit.code)
        assert (rules.code, rules.name, rules.level, rules.kecamatan, rules.responsible_for) == (
            unit.code,
            unit.name,
            unit.level,
            unit.kecamatan,
            unit.responsible_for,
        )


def test_a_registry_unit_without_an_entry_has_no_rules() -> None:
    text = 'version = "1"\n\n[[opd]]\ncode = "dpupr"\ncategories = ["jalan"]\n'
    rules = parse_table(text).units["dinkes"]
    assert rules == UnitRules(load_registry().get("dinkes"))
    assert (rules.categories, rules.keywords, rules.kelurahan) == ((), (), ())


def test_the_indexed_table_cannot_be_changed(indexed: IndexedTable) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        indexed.version = "tampered"  # type: ignore[misc]
    with pytest.raises(TypeError):
        indexed.units["dpupr"] = indexed.coordinator  # type: ignore[index]
    with pytest.raises(TypeError):
        indexed.by_category["jalan"] = indexed.coordinator  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        indexed.coordinator.keywords = ()  # type: ignore[misc]


def test_a_routing_table_decides_from_an_indexed_table(indexed: IndexedTable) -> None:
    complaint = ComplaintReceived(title="Jalan berlubang", body="Jalan di depan pasar berlubang")
    table = RoutingTable(indexed)
    assert table.version == indexed.version == RoutingTable.load().version
    assert table.decide(complaint) == RoutingTable.load().decide(complaint)
    assert table.coordinator is indexed.coordinator


def test_an_unreadable_table_is_refused_while_read() -> None:
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_table('version = "1\n')


@pytest.mark.parametrize("spelling", ["Pontianak Barat", "Kec. Pontianak Barat", "barat"])
def test_a_kecamatan_is_one_key_however_spelled(spelling: str) -> None:
    assert kecamatan_key(spelling) in kecamatan_keys("Kecamatan Pontianak Barat")


def test_a_kelurahan_is_one_key_however_spelled() -> None:
    assert place_key("Kel. Sungai Jawi Dalam") == place_key("sungai jawi dalam")
