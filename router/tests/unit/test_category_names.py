"""The category display names (``category_names.toml``): every category of every packaged
routing table has an Indonesian and an English name, the catalogue names no category that
no table has, and a code it does not know is still shown in words."""

from __future__ import annotations

import pytest

from lapor.router.category_names import catalogue, in_words, name_of, names_of, parse
from lapor.router.domain import RoutingTable
from lapor.router.table import packaged_tables


def table_categories() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name in packaged_tables():
        table = RoutingTable.load(deployment=name)
        found[name] = {c for unit in table.opds.values() for c in unit.categories}
    return found


def test_every_category_of_every_table_has_both_names():
    names = catalogue()
    for table, codes in table_categories().items():
        assert codes, table
        missing = sorted(codes - names.keys())
        assert not missing, f"{table}: no entry in category_names.toml for {missing}"
        for code in codes:
            entry = names[code]
            assert entry.id.strip() and entry.en.strip(), code
            assert entry.in_language("id") == entry.id and entry.in_language("en") == entry.en


def test_the_catalogue_names_no_category_that_no_table_has():
    every = set().union(*table_categories().values())
    assert sorted(catalogue().keys() - every) == []


def test_names_are_distinct_in_each_language():
    for lang in ("id", "en"):
        spelled = [entry.in_language(lang).casefold() for entry in catalogue().values()]
        assert len(spelled) == len(set(spelled)), lang


def test_an_unknown_code_is_shown_in_words_in_both_languages():
    unknown = name_of("parkir_liar_baru")
    assert unknown.id == unknown.en == "Parkir liar baru"
    assert in_words("ktp") == "KTP"
    assert name_of("jalan").en == "Roads" and name_of("jalan").id == "Jalan"
    assert list(names_of(["sampah", "jalan", "sampah"])) == ["sampah", "jalan"]


@pytest.mark.parametrize(
    "text",
    ['[jalan]\nid = "Jalan"\n', '[jalan]\nid = "Jalan"\nen = ""\n', 'jalan = "Jalan"\n'],
)
def test_a_malformed_catalogue_is_refused(text):
    with pytest.raises(ValueError):
        parse(text)
