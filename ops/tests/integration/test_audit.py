"""Tamper evidence on a real JetStream server: chains written by EventStore.append, verified
on the live log and on a tampered copy of it; one complaint's history for an auditor."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, StorageType, StreamConfig

from lapor.ops import audit
from lapor.ops.audit import (
    ALTERED,
    MISSING,
    REORDERED,
    TRUNCATED,
    UNCHAINED,
    Anchor,
    complaint_history,
    describe_history,
    verify,
)
from lapor.services.eventstore import HASH_HEADER, PREV_HASH_HEADER, EventStore, genesis_hash
from lapor.shared.envelope import envelope
from lapor.shared.events import (
    Actor,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintResolved,
    FollowUpPosted,
)
from lapor.shared.subjects import Subjects
from lapor.shared.tracking import new_tracking_id

SARI = Actor(role="admin", name="Sari")


@pytest.fixture
async def js(settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(settings.nats_url)
    yield nc.jetstream()
    await nc.close()


def lifecycle(cid: str, step: int):
    """The step-th event of a complaint's life, each with its actor."""
    event = [
        ComplaintReceived(title=f"Jalan rusak {cid}", body="Jalan berlubang di depan pasar"),
        ComplaintDisposed(opd="dpupr", opd_name="Dinas PUPR", by=SARI, automatic=False),
        FollowUpPosted(opd="dpupr", message="Tim sudah meninjau lokasi", officer="Budi"),
        ComplaintResolved(opd="dpupr", resolution="Jalan sudah ditambal", officer="Budi"),
    ][step]
    return envelope(event, complaint_id=cid, correlation_id=uuid.uuid4())


async def populate(store: EventStore, complaints: list[str], steps: int = 4) -> None:
    """Each complaint's life, interleaved in the log, appended as the services do."""
    last = dict.fromkeys(complaints, 0)
    for step in range(steps):
        for cid in complaints:
            last[cid] = await store.append(lifecycle(cid, step), expected_last_seq=last[cid])


async def read_all(js: JetStreamContext, stream: str) -> list[RawStreamMsg]:
    end = (await js.stream_info(stream)).state.last_seq
    return [await js.get_msg(stream, seq=seq) for seq in range(1, end + 1)]


@contextlib.asynccontextmanager
async def tampered_copy(
    js: JetStreamContext,
    source: Subjects,
    root: str,
    tamper: Callable[[list[RawStreamMsg]], list[tuple[RawStreamMsg, bytes]]],
) -> AsyncIterator[tuple[Subjects, list[tuple[RawStreamMsg, int]]]]:
    """A new stream under ``root`` holding the source log's messages (data and headers) in
    the order, and with the data, that ``tamper`` gives; yields its subjects and which
    source message went to which sequence of the copy. Deleted afterwards."""
    copy = Subjects(root)
    config = StreamConfig(
        name=copy.events_stream, subjects=[copy.all_events], storage=StorageType.MEMORY
    )
    await js.add_stream(config)
    try:
        placed = []
        for raw, data in tamper(await read_all(js, source.events_stream)):
            assert raw.subject is not None and raw.subject.startswith(f"{source.root}.")
            subject = f"{root}.{raw.subject[len(source.root) + 1 :]}"
            # Nats-* headers are the original write's preconditions and de-duplication.
            headers = {k: v for k, v in (raw.headers or {}).items() if not k.startswith("Nats-")}
            ack = await js.publish(subject, data, stream=copy.events_stream, headers=headers)
            placed.append((raw, ack.seq))
        yield copy, placed
    finally:
        await js.delete_stream(copy.events_stream)


def of(raws: list[RawStreamMsg], cid: str, n: int) -> RawStreamMsg:
    return [r for r in raws if f".complaint.{cid}." in (r.subject or "")][n]


def findings(report) -> set[tuple[int | None, str | None, str]]:
    return {(f.seq, f.complaint_id, f.kind) for f in report.findings}


async def test_appends_are_chained_per_complaint(settings, js):
    store = EventStore(js, settings.subjects)
    cid = new_tracking_id()
    await populate(store, [cid], steps=2)
    # Another connection knows nothing of these events: it reads the predecessor's hash.
    nc = await nats.connect(settings.nats_url)
    try:
        last = (await store.last(cid)).seq
        await EventStore(nc.jetstream(), settings.subjects).append(lifecycle(cid, 2), last)
    finally:
        await nc.close()
    stored = await store.load(cid)
    assert stored[0].headers[PREV_HASH_HEADER] == genesis_hash(cid)
    for before, after in itertools.pairwise(stored):
        assert after.headers[PREV_HASH_HEADER] == before.headers[HASH_HEADER]
    assert len({s.headers[HASH_HEADER] for s in stored}) == 3
    assert (await verify(js, settings.subjects.events_stream, settings.subjects)).ok


async def test_verify_finds_exactly_the_altered_removed_and_swapped_events(settings, js):
    store = EventStore(js, settings.subjects)
    a, b, c, d = (new_tracking_id() for _ in range(4))
    await populate(store, [a, b, c, d])

    clean = await verify(js, settings.subjects.events_stream, settings.subjects)
    assert clean.ok, clean.describe()
    assert (clean.events, clean.complaints) == (16, 4)

    raws = await read_all(js, settings.subjects.events_stream)
    altered, removed = of(raws, b, 1), of(raws, c, 2)
    first, second = of(raws, a, 1), of(raws, a, 2)

    def tamper(messages: list[RawStreamMsg]) -> list[tuple[RawStreamMsg, bytes]]:
        out = []
        for raw in messages:
            if raw.seq == removed.seq:
                continue
            data = raw.data or b""
            if raw.seq == altered.seq:
                doc = json.loads(data)
                doc["payload"]["opd_name"] = "Dinas Lain"
                data = json.dumps(doc).encode()
            out.append((raw, data))
        i = next(k for k, (r, _) in enumerate(out) if r.seq == first.seq)
        j = next(k for k, (r, _) in enumerate(out) if r.seq == second.seq)
        out[i], out[j] = out[j], out[i]
        return out

    progress: list[tuple[int, int]] = []
    async with tampered_copy(js, settings.subjects, f"copy.{settings.subject_root}", tamper) as (
        copy,
        placed,
    ):
        at = {raw.seq: seq for raw, seq in placed}
        report = await verify(
            js, copy.events_stream, copy, progress=lambda n, t: progress.append((n, t))
        )
        assert report.events == 15
        assert findings(report) == {
            (at[altered.seq], b, ALTERED),
            (at[of(raws, c, 3).seq], c, MISSING),  # the event after the removed one
            (at[second.seq], a, REORDERED),  # stored before its predecessor
            (at[first.seq], a, REORDERED),  # stored after its successor
        }, report.describe()
        assert progress[-1] == (15, 15)

        # An auditor's view of the tampered copy shows the same breaks, complaint by complaint.
        history_a = await complaint_history(js, copy, a)
        assert [h["chain"] for h in history_a] == ["ok", "broken", "broken", "ok"]
        history_c = await complaint_history(js, copy, c)
        assert [h["chain"] for h in history_c] == ["ok", "ok", "broken"]
        assert history_c[2]["problems"][0].startswith("missing:")

    # The original is untouched.
    assert (await verify(js, settings.subjects.events_stream, settings.subjects)).ok


async def test_a_removed_last_event_is_caught_by_an_anchor_only(settings, js):
    store = EventStore(js, settings.subjects)
    a, b = new_tracking_id(), new_tracking_id()
    await populate(store, [a, b])
    anchor = (await verify(js, settings.subjects.events_stream, settings.subjects)).anchor
    raws = await read_all(js, settings.subjects.events_stream)
    tail = of(raws, a, 3)

    def drop_tail(messages):
        return [(r, r.data) for r in messages if r.seq != tail.seq]

    root = f"copy2.{settings.subject_root}"
    async with tampered_copy(js, settings.subjects, root, drop_tail) as (copy, _):
        assert (await verify(js, copy.events_stream, copy)).ok  # the chain's blind spot
        report = await verify(js, copy.events_stream, copy, anchors=[anchor])
        assert findings(report) == {(None, None, TRUNCATED)}


async def test_an_event_published_around_the_store_is_unchained_and_the_chain_resumes(settings, js):
    store = EventStore(js, settings.subjects)
    cid = new_tracking_id()
    env = lifecycle(cid, 0)
    seq = await store.publish(
        settings.subjects.complaint(cid, env.type), env, settings.subjects.events_stream
    )
    seq = await EventStore(js, settings.subjects).append(lifecycle(cid, 1), seq)
    await store.append(lifecycle(cid, 2), seq)
    report = await verify(js, settings.subjects.events_stream, settings.subjects)
    assert findings(report) == {(1, cid, UNCHAINED)}


async def test_complaint_history_says_who_did_what_and_when(settings, js):
    store = EventStore(js, settings.subjects)
    cid, other = new_tracking_id(), new_tracking_id()
    await populate(store, [cid, other])

    history = await complaint_history(js, settings.subjects, cid)

    assert [(h["type"], h["who"]) for h in history] == [
        ("complaint.received", "reporter"),
        ("complaint.disposed", "admin (Sari)"),
        ("complaint.followed_up", "agency dpupr (Budi)"),
        ("complaint.resolved", "agency dpupr (Budi)"),
    ]
    assert history[1]["actor"] == {"role": "admin", "opd": None, "name": "Sari"}
    assert history[1]["summary"] == "disposed to dpupr"
    assert history[3]["summary"] == "resolved: Jalan sudah ditambal"
    assert all(h["chain"] == "ok" and not h["problems"] for h in history)
    assert [h["seq"] for h in history] == [1, 3, 5, 7]
    times = [h["occurred_at"] for h in history]
    assert times == sorted(times) and all(h["stored_at"] for h in history)
    lines = describe_history(history)
    assert len(lines) == 4 and "agency dpupr (Budi)" in lines[2] and lines[2].endswith("[ok]")


async def test_messages_deleted_from_the_stream_leave_a_gap_the_chain_shows(settings, js):
    store = EventStore(js, settings.subjects)
    a, b = new_tracking_id(), new_tracking_id()
    await populate(store, [a, b])
    anchor = (await verify(js, settings.subjects.events_stream, settings.subjects)).anchor
    raws = await read_all(js, settings.subjects.events_stream)

    def as_is(messages):
        return [(r, r.data) for r in messages]

    root = f"copy3.{settings.subject_root}"
    async with tampered_copy(js, settings.subjects, root, as_is) as (copy, placed):
        at = {raw.seq: seq for raw, seq in placed}
        # The copy allows deletes (the log does not): remove one event inside A's life
        # and the very last event of the log, which is B's last.
        await js.delete_msg(copy.events_stream, at[of(raws, a, 1).seq])
        await js.delete_msg(copy.events_stream, at[of(raws, b, 3).seq])
        report = await verify(js, copy.events_stream, copy, anchors=[anchor])
        assert report.events == 6
        assert findings(report) == {
            (at[of(raws, a, 2).seq], a, MISSING),
            (None, None, TRUNCATED),  # B's lost tail only the anchor shows
        }


async def test_a_log_without_complaint_events_verifies_quickly(settings, js, monkeypatch):
    monkeypatch.setattr(audit, "IDLE_SECONDS", 0.1)
    empty = await verify(js, settings.subjects.events_stream, settings.subjects)
    assert empty.ok and (empty.events, empty.complaints) == (0, 0)
    assert empty.anchor == Anchor(0, hashlib.sha256().hexdigest())

    other = Subjects(f"copy4.{settings.subject_root}")
    config = StreamConfig(
        name=other.events_stream,
        subjects=[other.all_events, f"{other.root}.other.>"],
        storage=StorageType.MEMORY,
    )
    await js.add_stream(config)
    try:
        await js.publish(f"{other.root}.other.x", b"not a complaint event", stream=config.name)
        report = await verify(js, other.events_stream, other)  # nothing under the filter
        assert report.ok and report.events == 0
    finally:
        await js.delete_stream(config.name)


# --- anchors kept between runs (``lapor audit verify`` as a nightly Job runs it) ----------


async def audit_run(settings, root: str, capsys, *anchors: str) -> tuple[int, str]:
    """``lapor audit verify`` on the log under ``root``, through the command's own code."""
    from lapor.ops.commands.audit import run_audit

    args = argparse.Namespace(audit_command="verify", keep=True)
    job = settings.model_copy(update={"subject_root": root})
    code = await run_audit(job, args, [Anchor.parse(a) for a in anchors])
    return code, capsys.readouterr().out


@contextlib.asynccontextmanager
async def own_log(js: JetStreamContext, root: str) -> AsyncIterator[Subjects]:
    """A log under ``root`` that, unlike the real one, may be cut and rewritten; it and
    its anchors' bucket are deleted afterwards."""
    subjects = Subjects(root)
    config = StreamConfig(
        name=subjects.events_stream, subjects=[subjects.all_events], storage=StorageType.MEMORY
    )
    await js.add_stream(config)
    try:
        yield subjects
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(subjects.events_stream)
        with contextlib.suppress(Exception):
            await js.delete_key_value(audit.anchor_bucket(subjects))


async def test_the_next_run_finds_the_anchor_and_reports_a_truncated_log(settings, js, capsys):
    root = f"{settings.subject_root}_cut"
    async with own_log(js, root) as log:
        a, b = new_tracking_id(), new_tracking_id()
        await populate(EventStore(js, log), [a, b])
        bucket = audit.anchor_bucket(log)
        assert bucket == f"{root.upper()}_AUDIT"

        code, out = await audit_run(settings, root, capsys)
        assert code == 0, out
        assert f"no anchor kept in {bucket} yet" in out
        assert f"anchor kept in {bucket} (revision 1)" in out
        [first] = await audit.AnchorStore(js, log).kept(log.events_stream)
        assert (first.anchor.events, first.last_seq, first.complaints) == (8, 8, 2)

        # Nothing changed: compared, intact, and the same anchor is not kept twice.
        code, out = await audit_run(settings, root, capsys)
        assert code == 0, out
        assert f"compared with 1 anchor(s) kept in {bucket}, the latest {first.anchor}" in out
        assert f"anchor already kept in {bucket} (revision 1)" in out

        # The log grows: a new anchor is kept beside the first.
        await EventStore(js, log).append(lifecycle(new_tracking_id(), 0), 0)
        code, out = await audit_run(settings, root, capsys)
        assert code == 0 and "(revision 2)" in out, out

        # The tail goes: the new complaint and B's last event. Every chain left is
        # intact; only the anchors can tell, both of them.
        last = (await js.stream_info(log.events_stream)).state.last_seq
        await js.delete_msg(log.events_stream, last)
        await js.delete_msg(log.events_stream, last - 1)
        code, out = await audit_run(settings, root, capsys)
        assert code == 1, out
        assert [line for line in out.splitlines() if line.startswith("  ")] == [
            "  log: truncated: the log holds 7 event(s), the anchor 8",
            "  log: truncated: the log holds 7 event(s), the anchor 9",
        ]
        assert "anchor not kept: the log has findings" in out
        kept = await audit.AnchorStore(js, log).kept(log.events_stream)
        assert [k.anchor.events for k in kept] == [8, 9]

        # An explicit --anchor is still compared too, with those kept.
        code, out = await audit_run(settings, root, capsys, str(first.anchor))
        assert code == 1 and "compared with 2 anchor(s)" in out

        # `lapor audit anchors` lists them, to copy out of band.
        from lapor.ops.commands.audit import run_audit

        job = settings.model_copy(update={"subject_root": root})
        listing = argparse.Namespace(audit_command="anchors", forget=False)
        assert await run_audit(job, listing) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(" ")[0] for line in lines] == [str(k.anchor) for k in kept]


async def test_the_next_run_reports_a_log_rewritten_consistently(settings, js, capsys):
    root = f"{settings.subject_root}_rw"
    a, b = new_tracking_id(), new_tracking_id()
    async with own_log(js, root) as log:
        await populate(EventStore(js, log), [a, b])
        code, out = await audit_run(settings, root, capsys)
        assert code == 0 and "(revision 1)" in out, out

        # Whoever can write the log writes it again: the same complaints, events and
        # count, other contents, every hash recomputed (appended through the event store).
        await js.delete_stream(log.events_stream)
        await js.add_stream(
            StreamConfig(
                name=log.events_stream, subjects=[log.all_events], storage=StorageType.MEMORY
            )
        )
        await populate(EventStore(js, log), [a, b])
        assert (await verify(js, log.events_stream, log)).ok  # the chains cannot tell

        code, out = await audit_run(settings, root, capsys)
        assert code == 1, out
        [finding] = [line for line in out.splitlines() if "anchor_mismatch" in line]
        assert finding.startswith("  seq 8: anchor_mismatch: after 8 event(s)")

        # After a restore that lost events on purpose, the operator forgets the anchors,
        # on the record; the next run keeps a new one.
        store = audit.AnchorStore(js, log)
        dropped = await store.forget(log.events_stream, by="Admin", reason="restored")
        assert len(dropped) == 1 and await store.kept(log.events_stream) == []
        code, out = await audit_run(settings, root, capsys)
        assert code == 0 and "no anchor kept" in out and "anchor kept in" in out, out
