"""The routing categories' display names in Indonesian and English
(``category_names.toml``, beside the routing tables): the one source of the words a
citizen reads for a category, in the portal's form and lists and in Open311's services.

The routing tables hold the codes (``jalan``, ``air_minum``) and who owns them; this
catalogue only says how each is called. A code it does not name (a category published at
run time with ``lapor rules publish``) is shown in words made from the code, the same in
both languages, so a new category never breaks a page.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from types import MappingProxyType

LANGUAGES = ("id", "en")
"""The languages every entry has: Indonesian first."""


@dataclass(frozen=True)
class CategoryName:
    code: str
    id: str
    """In Indonesian (the default, and Open311's ``service_name``)."""
    en: str

    def in_language(self, lang: str) -> str:
        return self.en if lang == "en" else self.id


def in_words(code: str) -> str:
    """``air_minum`` as ``Air minum``; short codes such as ``ktp`` in capitals: the name
    of a category the catalogue does not know."""
    words = code.replace("_", " ").strip()
    if len(words) <= 4 and " " not in words:
        return words.upper()
    return words[:1].upper() + words[1:]


def parse(text: str) -> Mapping[str, CategoryName]:
    """The catalogue's TOML: a table per code with exactly ``id`` and ``en``, both
    non-empty; anything else is a ``ValueError``."""
    data = tomllib.loads(text)
    names = {}
    for code, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != set(LANGUAGES):
            raise ValueError(f"category names: [{code}] must have exactly {LANGUAGES}")
        if not all(isinstance(entry[k], str) and entry[k].strip() for k in LANGUAGES):
            raise ValueError(f"category names: [{code}] has an empty name")
        names[code] = CategoryName(code, entry["id"].strip(), entry["en"].strip())
    return MappingProxyType(names)


@cache
def catalogue() -> Mapping[str, CategoryName]:
    """The packaged catalogue, by code."""
    return parse(files("lapor.router").joinpath("category_names.toml").read_text("utf-8"))


def name_of(code: str) -> CategoryName:
    """The names of ``code``: the catalogue's, else words made from the code."""
    known = catalogue().get(code)
    if known is not None:
        return known
    words = in_words(code)
    return CategoryName(code, words, words)


def names_of(codes: Iterable[str]) -> dict[str, CategoryName]:
    """Each code's names, in the order given (duplicates once)."""
    return {code: name_of(code) for code in dict.fromkeys(codes)}
