"""The reporter's forms, pure: which the status allows, a form as the tracker's body, the
tracker's refusals beside the form's fields."""

from __future__ import annotations

from lapor.portal import reporter
from lapor.portal.domain import GENERAL_ERROR


def test_the_forms_the_status_allows_are_the_trackers_rules() -> None:
    assert reporter.allowed("answered") == ["balas", "nilai", "selesai", "buka-kembali"]
    assert reporter.allowed("closed") == ["nilai", "buka-kembali"]
    for status in ("received", "disposed", "in_progress", "on_hold", "archived", None):
        assert reporter.allowed(status) == []


def test_a_form_becomes_the_trackers_body() -> None:
    actions = reporter.ACTIONS
    assert actions["balas"].body({"message": " Masih rusak ", "secret": "X"}) == {
        "message": "Masih rusak"
    }
    assert actions["nilai"].body({"stars": "4", "comment": " "}) == {"stars": 4, "comment": None}
    assert actions["nilai"].body({"comment": "Bagus"}) == {"stars": None, "comment": "Bagus"}
    assert actions["selesai"].body({"secret": "X"}) is None
    assert actions["buka-kembali"].body({"reason": "Belum"}) == {"reason": "Belum"}
    assert [a.path for a in actions.values()] == [
        "replies",
        "rating",
        "confirmation",
        "reopening",
    ]


def test_the_trackers_errors_land_beside_the_forms_fields() -> None:
    rate = reporter.ACTIONS["nilai"]
    errors = reporter.errors_of(
        rate,
        [
            {"field": "stars", "reason": "Input should be greater than or equal to 1"},
            {"field": "comment", "reason": "String should have at most 2000 characters"},
            {"field": "body", "reason": "not JSON"},
        ],
    )
    assert errors == {
        "nilai-stars": [("Choose from 1 to 5 stars.", {})],
        "nilai-comment": [("Write at most %(n)s characters.", {"n": "2000"})],
        GENERAL_ERROR: [("Please check this field.", {})],
    }
    reopen = reporter.ACTIONS["buka-kembali"]
    empty = [{"field": "reason", "reason": "String should have at least 1 character"}]
    assert reporter.errors_of(reopen, empty) == {
        "buka-kembali-reason": [("Write something here.", {})]
    }
    assert reporter.refused(reopen, reporter.WRONG_SECRET) == {
        "buka-kembali-secret": [(reporter.WRONG_SECRET, {})]
    }
    assert set(reporter.FIELD_LABELS) >= {f for a in reporter.ACTIONS.values() for f in a.fields}
