"""What ``lapor audit`` prints comes from the log, where a citizen (or whoever wrote to it)
chose the text: nothing of it may drive the auditor's terminal."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from lapor.ops.audit import (
    audit_entries,
    describe_history,
    entries_history,
    make_entry,
    printable,
)
from lapor.shared.envelope import envelope
from lapor.shared.events import Actor, ComplaintDisposed, ComplaintReceived
from lapor.shared.subjects import Subjects

HOSTILE = {
    "\x1b[2J\x1b[31mcolour and a cleared screen": "\\x1b[2J\\x1b[31mcolour and a cleared screen",
    "\x1b]0;a title\x07": "\\x1b]0;a title\\x07",  # OSC, ended by BEL
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\": (
        "\\x1b]8;;https://evil.example\\x1b\\\\link\\x1b]8;;\\x1b\\\\"
    ),
    "\x9b31m C1 CSI and \x85 NEL": "\\x9b31m C1 CSI and \\x85 NEL",
    "forged\r[ok]\nline\x7f": "forged\\x0d[ok]\\x0aline\\x7f",
    "\u202eevil\u202c and \u2066isolate\u2069": "\\u202eevil\\u202c and \\u2066isolate\\u2069",
    "para\u2029graph": "para\\u2029graph",
}


@pytest.mark.parametrize(("raw", "shown"), HOSTILE.items())
def test_control_sequences_are_shown_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_ordinary_text_is_left_alone_and_escapes_are_unambiguous() -> None:
    text = "Jalan berlubang di Jl. Gajah Mada — 2 m², ¿ok? 👍\tend"
    assert printable(text) == text.replace("\t", "\\x09")
    # A citizen who types a backslash sequence is not mistaken for a control character.
    assert printable("\\x1b") == "\\\\x1b" != printable("\x1b")


SUBJECTS = Subjects("lapor")
ACTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
"""What a terminal may act on."""


def as_logged(event, **payload: object) -> bytes:
    """``event`` as the log may hold it: the text checks of today's models do not protect
    what was appended before them, or by anything but intake."""
    data = json.loads(
        envelope(event, complaint_id="AAAAA-00001", correlation_id=uuid.uuid4()).model_dump_json()
    )
    data["payload"].update(payload)
    return json.dumps(data).encode()


def test_history_lines_hold_no_control_character() -> None:
    title = "\x1b[2J\x1b[HAll good\u202e"
    received = ComplaintReceived(title="Jalan rusak", body="Jalan rusak di depan pasar")
    disposed = ComplaintDisposed(
        opd="dpupr", opd_name="DPUPR", by=Actor(role="admin"), automatic=False
    )
    subject = "lapor.complaint.AAAAA-00001.complaint."
    entries = [
        make_entry(SUBJECTS, 1, subject + "received", as_logged(received, title=title), {}),
        make_entry(
            SUBJECTS,
            2,
            subject + "disposed",
            as_logged(disposed, by={"role": "admin", "name": "\x1b]0;owned\x07"}),
            {},
        ),
    ]
    lines = describe_history(entries_history("AAAAA-00001", entries))
    text = "\n".join(lines)
    # Read as an event, the title's controls are replaced (as every reader stores them);
    # the bidirectional override is storable and is shown as an escape.
    assert "All good\\u202e" in text
    assert "\\x1b]0;owned\\x07" in text  # who did it, from the log as it is
    assert not any(ACTIVE.search(line) for line in lines)


def test_verify_lines_hold_no_control_character() -> None:
    # A subject written around the event store: its complaint id is the attacker's text.
    entry = make_entry(SUBJECTS, 1, "lapor.complaint.\x1b[8mX.complaint.received", b"{}", {})
    lines = audit_entries([entry]).describe()
    assert any("\\x1b[8mX" in line for line in lines)
    assert not any(ACTIVE.search(line) for line in lines)
