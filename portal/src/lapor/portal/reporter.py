"""What the reporter may do on the tracking page with the secret code they got when they
sent the report: reply to the unit's answer, rate it, confirm it (finished) or reopen the
report. Pure: the forms' actions, which the status allows, a form as the tracker's body
and the tracker's refusals beside the form's fields (the routes are in
:mod:`lapor.portal.pages`).

Each action is a plain form posted to ``/lacak/{id}/<slug>`` with the secret in a password
field: never in a URL, never in a cookie; the tracker checks it (``X-Reporter-Secret``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lapor.portal.domain import GENERAL_ERROR, N_, reason

SECRET = "secret"
"""The form field that carries the reporter's secret code."""


@dataclass(frozen=True)
class Action:
    slug: str
    """The form's path under ``/lacak/{id}/`` and the prefix of its fields' ids."""
    path: str
    """The tracker's ``POST /complaints/{id}/<path>``."""
    statuses: frozenset[str]
    """The statuses in which the tracker allows it (its rules, for showing the form)."""
    fields: tuple[str, ...]
    body: Callable[[Mapping[str, str]], dict[str, Any] | None]
    done: str
    """What the page says once it is done."""


def _text(values: Mapping[str, str], name: str) -> str:
    return (values.get(name) or "").strip()


def _stars(values: Mapping[str, str]) -> int | str | None:
    given = _text(values, "stars")
    return int(given) if given.isdigit() else (given or None)


ACTIONS: dict[str, Action] = {
    action.slug: action
    for action in (
        Action(
            "balas",
            "replies",
            frozenset({"answered"}),
            ("message",),
            lambda v: {"message": _text(v, "message")},
            N_("Your reply was sent to the unit."),
        ),
        Action(
            "nilai",
            "rating",
            frozenset({"answered", "closed"}),
            ("stars", "comment"),
            lambda v: {"stars": _stars(v), "comment": _text(v, "comment") or None},
            N_("Thank you: your rating was recorded."),
        ),
        Action(
            "selesai",
            "confirmation",
            frozenset({"answered"}),
            (),
            lambda v: None,
            N_("Thank you: the report is finished."),
        ),
        Action(
            "buka-kembali",
            "reopening",
            frozenset({"answered", "closed"}),
            ("reason",),
            lambda v: {"reason": _text(v, "reason")},
            N_("The report was reopened and sent back to the unit."),
        ),
    )
}

STARS = (1, 2, 3, 4, 5)

FIELD_LABELS = {
    "secret": N_("Secret code"),
    "message": N_("Your reply"),
    "stars": N_("How satisfied are you with the answer?"),
    "comment": N_("Your comment (optional)"),
    "reason": N_("Why are you not satisfied?"),
}
"""Each field's label, for the links of the error summary."""

WRONG_SECRET = N_("The secret code is wrong: nothing was changed.")
NO_SECRET = N_("Enter the secret code you got when you sent the report.")
_STARS_REASON = N_("Choose from 1 to 5 stars.")
_EMPTY = N_("Write something here.")


def allowed(status: str | None) -> list[str]:
    """The slugs of the actions the status allows, in the page's order."""
    return [slug for slug, action in ACTIONS.items() if status in action.statuses]


def field_id(action: Action | str, name: str) -> str:
    """A field's id (and its errors' key) on the page: ``<slug>-<name>``, unique among the
    page's forms."""
    slug = action.slug if isinstance(action, Action) else action
    return f"{slug}-{name}"


def secret_of(values: Mapping[str, str]) -> str:
    return _text(values, SECRET)


def errors_of(
    action: Action, errors: Sequence[Mapping[str, Any]]
) -> dict[str, list[tuple[str, dict]]]:
    """The tracker's ``422`` ``errors`` beside the action's fields (keyed by field id):
    (message id, values); an input the form does not have goes above the forms."""
    found: dict[str, list[tuple[str, dict]]] = {}
    for error in errors:
        name = str(error.get("field", "")).split(".")[-1]
        text = str(error.get("reason", ""))
        key = field_id(action, name) if name in action.fields else GENERAL_ERROR
        if name == "stars":
            message: tuple[str, dict] = (_STARS_REASON, {})
        elif "at least 1 character" in text:
            message = (_EMPTY, {})
        else:
            message = reason(name, text)
        if message not in found.setdefault(key, []):
            found[key].append(message)
    return found


def refused(action: Action, message: str) -> dict[str, list[tuple[str, dict]]]:
    """An error beside the action's secret field."""
    return {field_id(action, SECRET): [(message, {})]}
