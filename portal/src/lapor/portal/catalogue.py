"""The portal's messages as Babel extracts them (templates and code): what every
catalogue must translate. ``python -m lapor.portal.catalogue`` writes ``portal.pot``."""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import write_po

from lapor.portal.i18n import LOCALE_DIR

HERE = LOCALE_DIR.parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {
    "templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "newstyle_gettext": "true",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
    }
}


def messages() -> list[str]:
    """Every message id, in order of first appearance."""
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found: dict[str, None] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        HERE, METHODS, keywords=keywords, options_map=OPTIONS
    ):
        ids = message if isinstance(message, tuple) else (message,)
        if ids and ids[0]:
            found[ids[0]] = None
    return list(found)


def main() -> None:
    catalog = Catalog(project="lapor-portal", domain="portal")
    for message in messages():
        catalog.add(message)
    with (LOCALE_DIR / "portal.pot").open("wb") as out:
        write_po(out, catalog, omit_header=True, sort_output=False)


if __name__ == "__main__":
    main()
