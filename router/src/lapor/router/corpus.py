"""The project's own labelled complaints: what a new deployment's model starts from.

JSON lines, one complaint each, written for this project the way citizens write (see
``tests/routing/corpus/README.md``)::

    {"id": "w1-0001", "deployment": "pontianak", "channel": "sms", "title": "",
     "body": "...", "category": null, "location": null, "expected_opd": "dpupr",
     "also_right": ["bpbd"], "style": ["sms", "typo"]}

The development part ships with the router (``development.jsonl`` beside this module);
the test part stays in the repository's tests and is never trained or tuned on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from lapor.router.training import Example
from lapor.shared.events import ComplaintReceived, Location

TITLE_WORDS = 8
"""Words of the body that stand in for a missing title (SMS and chat have none)."""


@dataclass(frozen=True)
class Item:
    """One labelled complaint of the corpus."""

    id: str
    deployment: str
    complaint: ComplaintReceived
    expected: str
    also_right: frozenset[str]
    style: frozenset[str]
    chars: int
    """Length of the text as written (title and body)."""

    def right(self, unit: str) -> bool:
        return unit == self.expected or unit in self.also_right


def complaint_of(raw: dict) -> ComplaintReceived:
    """The complaint as intake would receive it; a missing title becomes the body's first
    words, as the SMS and chat channels do."""
    body = raw["body"].strip()
    title = (raw.get("title") or "").strip() or " ".join(body.split()[:TITLE_WORDS])
    location = raw.get("location")
    return ComplaintReceived(
        title=title[:200].ljust(5, "."),
        body=body[:4000].ljust(10, "."),
        category=raw.get("category") or None,
        location=Location(**location) if location else None,
        suggested_opd=raw.get("suggested_opd"),
    )


def read(lines: Iterable[str], source: str = "corpus") -> list[Item]:
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                Item(
                    id=raw.get("id", f"{source}:{number}"),
                    deployment=raw.get("deployment", "pontianak"),
                    complaint=complaint_of(raw),
                    expected=raw["expected_opd"],
                    also_right=frozenset(raw.get("also_right", ())),
                    style=frozenset(raw.get("style", ())),
                    chars=len(raw.get("title") or "") + len(raw["body"]),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{source}:{number}: {error}") from error
    return items


def load(path: Path) -> list[Item]:
    """The items of a corpus file."""
    return read(Path(path).read_text(encoding="utf-8").splitlines(), str(path))


def development() -> list[Item]:
    """The development part shipped with the router."""
    text = files("lapor.router").joinpath("development.jsonl").read_text(encoding="utf-8")
    return read(text.splitlines(), "development.jsonl")


def examples(items: Iterable[Item], *, without_category: bool = False) -> list[Example]:
    """Training examples of corpus items (optionally as text only)."""
    out = []
    for item in items:
        complaint = item.complaint
        if without_category:
            complaint = complaint.model_copy(update={"category": None})
        out.append(Example(complaint=complaint, unit=item.expected, source="corpus"))
    return out
