"""The portal's pure parts: catalogues complete, CSRF tokens, form and errors, charts."""

from __future__ import annotations

from lapor.portal import domain, i18n
from lapor.portal.catalogue import messages
from lapor.portal.csrf import Csrf


def test_every_visible_string_has_an_indonesian_translation() -> None:
    found = messages()
    assert len(found) > 100
    indonesian = i18n.translations("id")
    missing = [m for m in found if indonesian.gettext(m) == m and m not in {"Status"}]
    assert missing == []


def test_numbers_and_rates_as_each_language_writes_them() -> None:
    assert i18n.percent("95.96", "id") == "95,96%"
    assert i18n.percent("95.90", "en") == "95.90%"
    assert i18n.number(1024, "id") == "1.024"
    assert i18n.choose("en", "id") == "en"
    assert i18n.choose(None, "en") == "en"
    assert i18n.choose("xx", None) == "id"


def test_a_csrf_token_is_valid_only_signed_and_submitted_twice() -> None:
    csrf = Csrf("secret")
    token = csrf.issue()
    assert csrf.check(token, token)
    assert not csrf.check(token, None)
    assert not csrf.check(None, token)
    assert not csrf.check(token, csrf.issue())
    forged = token.split(".")[0] + ".AAAA"
    assert not csrf.check(forged, forged)
    assert not Csrf("other").check(token, token)


def test_the_form_becomes_intakes_body_without_empty_fields() -> None:
    body = domain.submission(
        {
            "title": "Judul laporan",
            "body": "Isi laporan panjang",
            "category": "",
            "kecamatan": "Pontianak Kota",
            "anonymous": "on",
            "email": " ",
        }
    )
    assert body == {
        "channel": "web",
        "report_type": "pengaduan",
        "title": "Judul laporan",
        "body": "Isi laporan panjang",
        "anonymous": True,
        "confidential": False,
        "location": {"kecamatan": "Pontianak Kota"},
    }


def test_intakes_errors_land_beside_the_forms_fields() -> None:
    errors = domain.field_errors(
        [
            {"field": "reporter.email", "reason": "value is not a valid email address"},
            {"field": "title", "reason": "String should have at least 5 characters"},
            {"field": "reporter.phone", "reason": "String should match pattern '^...'"},
            {"field": "location", "reason": "Value error, lat and lon must be given together"},
        ]
    )
    assert list(errors) == ["title", "address", "phone", "email"]
    assert errors["title"] == [("Write at least %(n)s characters.", {"n": "5"})]
    assert errors["phone"][0][0].startswith("Write a phone number")


def test_charts_scale_to_their_top() -> None:
    bars = domain.hbars([("a", 50), ("b", 100), ("c", -1)], 100)
    assert [b.width for b in bars] == [150.0, 300.0, 0.0]
    chart = domain.line_chart(["Jan", "Feb", "Mar"], {"received": [3, 9, 0]})
    assert chart.top_value == 20
    (line,) = chart.lines
    assert len(line.points) == 3 and line.points[2][1] == chart.height - chart.bottom
