"""The hash chain and its verification, on logs held in memory."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import pytest

from lapor.ops.audit import (
    ALTERED,
    ANCHOR_MISMATCH,
    FORKED,
    MISSING,
    REORDERED,
    TRUNCATED,
    UNCHAINED,
    Anchor,
    Entry,
    audit_entries,
    classify_chain,
    entries_history,
    make_entry,
)
from lapor.services.eventstore import (
    HASH_HEADER,
    PREV_HASH_HEADER,
    chain_hash,
    genesis_hash,
    link_hash,
    relative_subject,
)
from lapor.shared.subjects import Subjects

A, B, C, D = "AAAAA-00001", "BBBBB-00002", "CCCCC-00003", "DDDDD-00004"
TYPE = "complaint.followed_up"


def subject(cid: str) -> str:
    return f"complaint.{cid}.{TYPE}"


def data(cid: str, n: int) -> bytes:
    return json.dumps({"complaint_id": cid, "n": n}).encode()


def append(log: list[Entry], cid: str, n: int | None = None, chained: bool = True) -> Entry:
    """What EventStore.append does, in memory."""
    n = sum(e.complaint_id == cid for e in log) if n is None else n
    body = data(cid, n)
    headers = {"Lapor-Event-Type": TYPE, "Nats-Msg-Id": f"{cid}-{n}"}
    if chained:
        previous = [e for e in log if e.complaint_id == cid]
        prev = (
            link_hash(previous[-1].subject, previous[-1].data, previous[-1].headers)
            if previous
            else genesis_hash(cid)
        )
        headers[PREV_HASH_HEADER] = prev
        headers[HASH_HEADER] = chain_hash(prev, subject(cid), body, headers)
    entry = Entry(len(log) + 1, cid, subject(cid), body, headers)
    log.append(entry)
    return entry


def interleaved(rounds: int = 4, complaints: tuple[str, ...] = (A, B, C, D)) -> list[Entry]:
    log: list[Entry] = []
    for _ in range(rounds):
        for cid in complaints:
            append(log, cid)
    return log


def copied(entries: list[Entry]) -> list[Entry]:
    """A copy into a new stream numbers the events afresh."""
    return [replace(e, seq=i + 1) for i, e in enumerate(entries)]


def at(log: list[Entry], cid: str, n: int) -> Entry:
    return [e for e in log if e.complaint_id == cid][n]


def kinds(report) -> set[tuple[int | None, str | None, str]]:
    return {(f.seq, f.complaint_id, f.kind) for f in report.findings}


# --- the hash ------------------------------------------------------------------------


def test_hash_is_hex_sha256_and_deterministic():
    h = chain_hash("p" * 64, subject(A), b"{}", {"Lapor-Event-Type": TYPE})
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert h == chain_hash("p" * 64, subject(A), b"{}", {"Lapor-Event-Type": TYPE})


def test_hash_depends_on_predecessor_subject_data_and_application_headers():
    base = chain_hash("p" * 64, subject(A), b"{}", {"Lapor-Event-Type": TYPE})
    variants = [
        chain_hash("q" * 64, subject(A), b"{}", {"Lapor-Event-Type": TYPE}),
        chain_hash("p" * 64, subject(B), b"{}", {"Lapor-Event-Type": TYPE}),
        chain_hash("p" * 64, subject(A), b"{ }", {"Lapor-Event-Type": TYPE}),
        chain_hash("p" * 64, subject(A), b"{}", {"Lapor-Event-Type": "other"}),
        chain_hash("p" * 64, subject(A), b"{}", {}),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def test_hash_ignores_transport_and_chain_headers_and_header_name_case():
    headers = {"Lapor-Event-Type": TYPE}
    base = chain_hash("p" * 64, subject(A), b"{}", headers)
    noisy = {
        "lapor-event-type": TYPE,
        "Nats-Msg-Id": "x",
        "Nats-Expected-Last-Subject-Sequence": "7",
        HASH_HEADER: "h" * 64,
        PREV_HASH_HEADER: "p" * 64,
    }
    assert chain_hash("p" * 64, subject(A), b"{}", noisy) == base


def test_fields_are_separated_so_they_cannot_run_into_each_other():
    assert chain_hash("ab", "c", b"") != chain_hash("a", "bc", b"")


def test_genesis_is_per_complaint_and_fixed():
    assert genesis_hash(A) == hashlib.sha256(f"lapor:{A}".encode()).hexdigest()
    assert genesis_hash(A) != genesis_hash(B)


def test_link_hash_is_the_header_or_an_implied_hash_of_an_unchained_event():
    assert link_hash(subject(A), b"{}", {HASH_HEADER: "h" * 64}) == "h" * 64
    implied = link_hash(subject(A), b"{}", {})
    assert implied == link_hash(subject(A), b"{}", None) != link_hash(subject(A), b"{ }", {})


def test_subjects_are_hashed_relative_to_the_root():
    subjects = Subjects("copy.t1")
    assert relative_subject(subjects, f"copy.t1.complaint.{A}.{TYPE}") == subject(A)
    entry = make_entry(subjects, 3, f"copy.t1.complaint.{A}.{TYPE}", b"{}", None)
    assert (entry.complaint_id, entry.subject, entry.seq) == (A, subject(A), 3)


# --- verification ----------------------------------------------------------------------


def test_an_untouched_log_is_intact_and_its_anchor_matches():
    log = interleaved()
    report = audit_entries(log)
    assert report.ok and (report.events, report.complaints, report.last_seq) == (16, 4, 16)
    again = audit_entries(copied(log), anchors=[report.anchor])
    assert again.ok and again.anchor == report.anchor


def test_altered_data_is_reported_once_at_that_event():
    log = interleaved()
    victim = at(log, B, 1)
    log[victim.seq - 1] = replace(victim, data=victim.data.replace(b'"n": 1', b'"n": 9'))
    assert kinds(audit_entries(log)) == {(victim.seq, B, ALTERED)}


def test_an_altered_hash_header_is_reported_once_and_the_successor_still_links():
    log = interleaved()
    victim = at(log, C, 2)
    log[victim.seq - 1] = replace(victim, headers={**victim.headers, HASH_HEADER: "0" * 64})
    assert kinds(audit_entries(log)) == {(victim.seq, C, ALTERED)}


def test_a_moved_event_is_altered_where_it_lands_and_leaves_a_gap_where_it_was():
    log = interleaved(3)
    victim = at(log, A, 1)
    log[victim.seq - 1] = replace(victim, subject=subject(B), complaint_id=B)
    assert kinds(audit_entries(log)) == {
        (victim.seq, B, ALTERED),
        (victim.seq, B, MISSING),
        (at(log, A, 1).seq, A, MISSING),
    }


def test_a_removed_event_is_missing_before_its_successor():
    log = interleaved()
    gone = at(log, C, 1)
    tampered = copied([e for e in log if e is not gone])
    successor = at(tampered, C, 1)
    report = audit_entries(tampered)
    assert kinds(report) == {(successor.seq, C, MISSING)}
    assert "not in the log" in report.findings[0].detail


def test_a_removed_first_event_is_missing_too():
    log = interleaved()
    tampered = copied([e for e in log if e is not at(log, D, 0)])
    assert kinds(audit_entries(tampered)) == {(at(tampered, D, 0).seq, D, MISSING)}


def test_two_swapped_events_are_reported_as_a_pair():
    log = interleaved()
    first, second = at(log, A, 1), at(log, A, 2)
    order = list(log)
    i, j = order.index(first), order.index(second)
    order[i], order[j] = order[j], order[i]
    tampered = copied(order)
    report = audit_entries(tampered)
    assert kinds(report) == {(i + 1, A, REORDERED), (j + 1, A, REORDERED)}
    details = {f.seq: f.detail for f in report.findings}
    assert details[i + 1] == f"stored before its predecessor, seq {j + 1}"
    assert details[j + 1] == f"stored after its successor, seq {i + 1}"


def test_an_event_moved_past_two_successors_flags_the_break_only():
    log = interleaved(5)
    moved = at(log, B, 1)
    order = [e for e in log if e is not moved]
    order.insert(order.index(at(log, B, 3)) + 1, moved)
    tampered = copied(order)
    report = audit_entries(tampered)
    assert kinds(report) == {
        (at(tampered, B, 1).seq, B, REORDERED),  # B2, stored before its predecessor
        (at(tampered, B, 3).seq, B, REORDERED),  # B1, stored after B2
    }


def test_a_duplicated_event_is_a_fork():
    log = interleaved(3)
    tampered = copied([*log, at(log, A, 1)])
    assert kinds(audit_entries(tampered)) == {(len(tampered), A, FORKED)}


def test_an_unchained_event_is_reported_and_the_chain_resumes_after_it():
    log: list[Entry] = []
    append(log, A, chained=False)  # before the chain existed, or around the store
    append(log, B)
    append(log, A)
    append(log, A)
    assert kinds(audit_entries(log)) == {(1, A, UNCHAINED)}


def test_the_case_of_the_issue_altered_removed_and_swapped():
    log = interleaved()
    altered, removed = at(log, B, 1), at(log, C, 2)
    swap = (at(log, A, 1), at(log, A, 2))
    order = []
    for e in log:
        if e is removed:
            continue
        if e is altered:
            e = replace(e, data=e.data + b" ")
        order.append(swap[1] if e is swap[0] else swap[0] if e is swap[1] else e)
    tampered = copied(order)
    seq = {id(e): tampered[i].seq for i, e in enumerate(order)}
    assert kinds(audit_entries(tampered)) == {
        (at(tampered, B, 1).seq, B, ALTERED),
        (at(tampered, C, 2).seq, C, MISSING),  # C's fourth event, now the third
        (seq[id(swap[1])], A, REORDERED),
        (seq[id(swap[0])], A, REORDERED),
    }


# --- the limits of a chain, and anchors ---------------------------------------------------


def test_a_removed_last_event_needs_an_anchor():
    log = interleaved()
    anchor = audit_entries(log).anchor
    tampered = copied([e for e in log if e is not at(log, A, 3)])
    assert audit_entries(tampered).ok  # nothing links to a complaint's last event
    report = audit_entries(tampered, anchors=[anchor])
    assert kinds(report) == {(None, None, TRUNCATED)}


def test_a_consistently_rewritten_chain_needs_an_anchor():
    log = interleaved()
    anchor = audit_entries(log).anchor
    # A forger who knows the scheme rewrites B's second event and rehashes B from there.
    forged: list[Entry] = []
    for e in log:
        if e.complaint_id == B and e.seq >= at(log, B, 1).seq:
            n = sum(f.complaint_id == B for f in forged)
            new = append(forged, B, n)
            if n == 1:
                body = new.data.replace(b'"n": 1', b'"n": 1, "forged": true')
                headers = {k: v for k, v in new.headers.items() if k != HASH_HEADER}
                headers[HASH_HEADER] = chain_hash(
                    headers[PREV_HASH_HEADER], subject(B), body, headers
                )
                forged[-1] = replace(new, data=body, headers=headers)
        else:
            forged.append(replace(e, seq=len(forged) + 1))
    assert audit_entries(forged).ok
    report = audit_entries(forged, anchors=[anchor])
    assert kinds(report) == {(16, None, ANCHOR_MISMATCH)}
    # An anchor from before the forgery still matches; one after it does not.
    early = audit_entries(log[:4]).anchor
    assert audit_entries(forged, anchors=[early]).ok


def test_anchor_text_round_trips():
    anchor = Anchor(12, "a" * 64)
    assert Anchor.parse(str(anchor)) == anchor
    with pytest.raises(ValueError):
        Anchor.parse("12:abc")


def test_classify_chain_of_an_intact_complaint_finds_nothing():
    log = interleaved()
    assert classify_chain(A, [e for e in log if e.complaint_id == A]) == []


def test_history_marks_broken_entries():
    log: list[Entry] = []
    for _ in range(4):
        append(log, A)
    tampered = copied([log[0], log[2], log[1], log[3]])
    history = entries_history(A, tampered)
    assert [h["chain"] for h in history] == ["ok", "broken", "broken", "ok"]
    assert history[1]["problems"] == ["reordered: stored before its predecessor, seq 3"]
    assert history[0]["summary"] == "unreadable event data"  # not an envelope, in this test
