"""Languages: Indonesian first, English on request.

The pages are written with English message ids (``{% trans %}`` and ``_()`` in the
templates, ``gettext`` in code) and every language, Indonesian included, is a gettext
catalogue in ``locale/<lang>/LC_MESSAGES/portal.po``. The ``.po`` files are compiled when
the service starts (Babel reads them and writes the ``.mo`` in memory), so there is no
build step and no binary file in the tree. The language of a request is ``?lang=`` if
given (and then remembered in the ``lang`` cookie), else the cookie, else Indonesian.
"""

from __future__ import annotations

import io
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LANGUAGES = ("id", "en")
"""The languages offered; the first is the default."""
DEFAULT = LANGUAGES[0]
COOKIE = "lang"
DOMAIN = "portal"
LOCALE_DIR = Path(__file__).with_name("locale")


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang`` (message ids as they are when it has none)."""
    path = catalogue_path(lang)
    if not path.is_file():
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def choose(query: str | None, cookie: str | None) -> str:
    """The request's language: the query's, else the cookie's, else the default."""
    for given in (query, cookie):
        if given in LANGUAGES:
            return given
    return DEFAULT


def number(value: int | Decimal | float, lang: str) -> str:
    """942 and 95.96 as the language writes them (id: ``95,96``, ``1.024``)."""
    return format_decimal(value, locale=lang, decimal_quantization=False)


def percent(value: Decimal | float | str | None, lang: str) -> str:
    """A rate already truncated to two decimals (analytics), as ``95,96%``; None as a dash."""
    if value is None:
        return "–"
    return format_decimal(Decimal(str(value)), format="#,##0.00", locale=lang) + "%"
