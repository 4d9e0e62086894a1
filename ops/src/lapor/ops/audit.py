"""Tamper evidence for the complaint log: hash chains, verification, and an auditor's view.

The chain
=========

Each complaint's events form a hash chain, written by
:meth:`lapor.services.eventstore.EventStore.append` into two headers::

    Lapor-Prev-Hash = Lapor-Hash of the complaint's previous event
                      (its first event: genesis = sha256("lapor:" + complaint_id))
    Lapor-Hash      = sha256("lapor-chain-v1" \\n prev \\n subject \\n
                             sha256(Lapor-* headers) \\n sha256(data))

``subject`` is relative to the root (``complaint.<id>.<type>``), so a copy, mirror or
restore under another root still verifies, while moving an event to another complaint
or type does not. The covered headers are the application's own ``Lapor-*`` headers
(canonical: lower-case names, sorted), not ``Nats-*`` transport headers.

Why per complaint and not one chain over the whole log: appends to different complaints
are concurrent (several replicas of several services), and only per complaint does the
server serialise them (``Nats-Expected-Last-Subject-Sequence`` over the complaint's
subjects). A global chain would need a global expected sequence, i.e. one writer at a
time for the whole platform, or a chaining service; per complaint, the optimistic
concurrency check that is already there guarantees the chain: the append is accepted
only if the event the header names as predecessor is still the complaint's last, so a
chain can neither fork nor skip. It also fits how an auditor asks ("show me complaint
X"), and a complaint's history can be checked on its own. What a per-complaint chain
cannot see is the loss of a complaint's *last* events or of whole complaints (nothing
links to them); anchors (below) cover that.

Verification (:func:`verify`)
=============================

One ordered pass over the stream (an ordered push consumer, no acks; about 10,000
events/s on a 2-core machine, where nats-py's header parsing alone caps the client at
about 15,000), memory proportional to the number of complaints (their latest hash, about
350 bytes each), not to the number of events:

* each event's hash is recomputed from its own headers and data: a mismatch is
  **altered** (data, subject or a covered header changed; also a chain header missing
  on one side); an event with neither header is **unchained** (written around
  ``EventStore.append``, or before the chain existed; its successor links to an implied
  hash of its content, so the chain resumes after it);
* its ``Lapor-Prev-Hash`` is compared with the hash of the complaint's previous event in
  log order (genesis for the first). An altered event still answers to both its stored
  and its recomputed hash, so alteration is reported once, not again at its successor.

A complaint whose links all match is a complete, correctly ordered chain. The rare
complaint whose links do not is read again in full (by subject, up to the end of the
pass) and classified by :func:`classify_chain`, which sees the whole complaint:

* **missing**: the predecessor it names is no event of the complaint in the log (and is
  not the genesis). Reported at the event *after* the gap: an event was removed before
  it (or replaced by a forged one). Removing a complaint's first event shows here too,
  since the second names a hash instead of the genesis.
* **reordered**: the predecessor it names is stored *later* in the log. Reported in
  pairs, at the event stored before its predecessor and at that predecessor (stored
  after its successor): two swapped events give exactly two findings.
* **forked**: a second event names a predecessor (or the genesis) that another event
  already names: an inserted or duplicated event. ``append`` can never write one.

Anchors: the limit and how to close it
======================================

The chain shows what is *inside* the log. Removing the tail of a complaint, whole
complaints, or the end of the log leaves intact chains; so does an attacker with write
access who recomputes every hash after an altered event (the hashes are not keyed). An
:class:`Anchor` closes both gaps: every report ends with one, ``(events, digest)``, the
digest over every complaint's latest hash after the first ``events`` events of the log.
Keep it outside the attacker's reach (print it in the monthly report, send it to the
inspectorate, store it under another account); a later ``verify(..., anchors=[it])``
recomputes the digest after the same number of events and reports **truncated** (the log
now has fewer events) or **anchor_mismatch** (an event up to there was removed, inserted
or rewritten, however consistently). Anchors count events, not sequences, so they hold
for a copy too.

Where anchors are kept (:class:`AnchorStore`, :func:`verify_kept`)
==================================================================

``lapor audit verify`` keeps the anchor of every clean run in the key-value bucket
``<ROOT>_AUDIT`` (created on first use), key ``anchor.<stream>``, and compares the log with
every anchor kept there (the last ``ANCHOR_HISTORY``) on the next run, so a nightly Job
reports a truncated or rewritten log without anyone passing ``--anchor``. A run with
findings keeps nothing: its anchor would make the damage the new reference. The bucket
lives on the same NATS as the log, so it answers an accident or a careless hand, not an
administrator of that NATS who rewrites both: against that, copy the anchors out of band
too (every run prints its anchor; ``lapor audit anchors`` lists those kept).

Wiring (``lapor audit ...``)::

    report = await verify(js, settings.subjects.events_stream, settings.subjects,
                          progress=lambda done, total: ..., anchors=[Anchor.parse(text)])
    print("\\n".join(report.describe())); exit(0 if report.ok else 1)
    history = await complaint_history(js, settings.subjects, tracking_id)
    print("\\n".join(describe_history(history)))
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from lapor.services.eventstore import (
    HASH_HEADER,
    PREV_HASH_HEADER,
    UNCHAINED_PREV,
    chain_hash,
    genesis_hash,
    header,
    relative_subject,
)
from lapor.shared import events as ev
from lapor.shared import words
from lapor.shared.envelope import Envelope, UnknownEvent, decode, parse
from lapor.shared.subjects import Subjects

log = structlog.get_logger(__name__)

ALTERED = "altered"
MISSING = "missing"
REORDERED = "reordered"
FORKED = "forked"
UNCHAINED = "unchained"
TRUNCATED = "truncated"
ANCHOR_MISMATCH = "anchor_mismatch"

PROGRESS_EVERY = 1000
IDLE_SECONDS = 2.0

Progress = Callable[[int, int], object]
"""Called now and then with (events read, events in the stream)."""


@dataclass(frozen=True)
class Finding:
    """One problem: where (stream sequence, complaint; both None for the log as a whole)
    and what."""

    seq: int | None
    complaint_id: str | None
    kind: str
    detail: str

    def describe(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        if self.complaint_id:
            where += f" {self.complaint_id}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Anchor:
    """The state of every chain after the first ``events`` events of the log."""

    events: int
    digest: str

    def __str__(self) -> str:
        return f"{self.events}:{self.digest}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        events, _, digest = text.strip().partition(":")
        if not events.isdigit() or len(digest) != 64:
            raise ValueError(f"not an anchor (events:sha256hex): {text!r}")
        return cls(int(events), digest.lower())


@dataclass(frozen=True)
class AuditReport:
    stream: str
    events: int
    complaints: int
    last_seq: int
    findings: list[Finding]
    anchor: Anchor
    """Keep it out of band; pass it to a later :func:`verify`."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def describe(self) -> list[str]:
        """Printable lines: what came from the log (subjects, headers) is escaped."""
        verdict = "intact" if self.ok else f"{len(self.findings)} finding(s)"
        lines = [
            f"{self.stream}: {self.events} event(s) of {self.complaints} complaint(s) "
            f"up to seq {self.last_seq}: {verdict}",
            *(f"  {f.describe()}" for f in self.findings),
            f"anchor: {self.anchor}",
        ]
        return [printable(line) for line in lines]


@dataclass(frozen=True, eq=False)
class Entry:
    """One event of the log as the chain sees it (``subject`` relative to the root)."""

    seq: int
    complaint_id: str
    subject: str
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    time: datetime | None = None

    @cached_property
    def prev(self) -> str | None:
        return header(self.headers, PREV_HASH_HEADER)

    @cached_property
    def stored(self) -> str | None:
        return header(self.headers, HASH_HEADER)

    @cached_property
    def computed(self) -> str:
        return chain_hash(self.prev or UNCHAINED_PREV, self.subject, self.data, self.headers)

    @property
    def names(self) -> tuple[str, ...]:
        """The hashes a successor may name for this event: the stored one (what was
        appended) and, if different, the recomputed one (if only the header changed)."""
        if self.stored is None or self.stored == self.computed:
            return (self.computed,)
        return (self.stored, self.computed)


def make_entry(
    subjects: Subjects,
    seq: int,
    subject: str,
    data: bytes | None,
    headers: Mapping[str, str] | None,
    time: datetime | None = None,
) -> Entry:
    rel = relative_subject(subjects, subject)
    parts = rel.split(".")
    complaint_id = parts[1] if len(parts) > 2 and parts[0] == "complaint" else rel
    return Entry(seq, complaint_id, rel, data or b"", dict(headers or {}), time)


def check_entry(entry: Entry) -> list[Finding]:
    """What one event shows on its own: altered or unchained."""

    def finding(kind: str, detail: str) -> list[Finding]:
        return [Finding(entry.seq, entry.complaint_id, kind, detail)]

    if entry.prev is None and entry.stored is None:
        return finding(UNCHAINED, "no chain headers: not appended through the event store")
    if entry.prev is None:
        return finding(ALTERED, f"its {PREV_HASH_HEADER} header is gone")
    if entry.stored is None:
        return finding(ALTERED, f"its {HASH_HEADER} header is gone")
    if entry.stored != entry.computed:
        return finding(
            ALTERED,
            f"content differs from what was appended (hash {entry.stored[:12]}…, "
            f"recomputed {entry.computed[:12]}…)",
        )
    return []


def classify_chain(complaint_id: str, entries: Sequence[Entry]) -> list[Finding]:
    """Link findings (missing, reordered, forked) of one complaint, given all its events
    in log order. Alteration is :func:`check_entry`'s business."""
    genesis = genesis_hash(complaint_id)
    owner: dict[str, int] = {}
    for i, e in enumerate(entries):
        for name in e.names:
            owner.setdefault(name, i)
    claimed: dict[int, int] = {}  # predecessor index (-1: genesis) -> first event naming it
    details: dict[tuple[int, str], list[str]] = defaultdict(list)
    for i, e in enumerate(entries):
        if e.prev is None:
            continue  # unchained: nothing to link
        if e.prev == genesis:
            pred = -1
        elif e.prev in owner:
            pred = owner[e.prev]
        else:
            details[(i, MISSING)].append(
                f"the event before it (hash {e.prev[:12]}…) is not in the log"
            )
            continue
        if pred in claimed:
            other = entries[claimed[pred]].seq
            what = "the genesis" if pred < 0 else f"seq {entries[pred].seq}"
            details[(i, FORKED)].append(
                f"names {what} as predecessor, as seq {other} does: inserted or duplicated"
            )
            continue
        claimed[pred] = i
        if pred > i:
            details[(i, REORDERED)].append(
                f"stored before its predecessor, seq {entries[pred].seq}"
            )
            details[(pred, REORDERED)].append(f"stored after its successor, seq {e.seq}")
    return sorted(
        (
            Finding(entries[i].seq, complaint_id, kind, "; ".join(texts))
            for (i, kind), texts in details.items()
        ),
        key=lambda f: (f.seq, f.kind),
    )


def heads_digest(heads: Mapping[str, tuple[str, ...]]) -> str:
    """Digest over every complaint's latest hash (what an anchor records)."""
    h = hashlib.sha256()
    for complaint_id in sorted(heads):
        h.update(f"{complaint_id} {heads[complaint_id][0]}\n".encode())
    return h.hexdigest()


class Walk:
    """The streaming pass: feed every event in log order, then classify the complaints
    listed in ``suspicious`` with their full history and call :meth:`report`."""

    def __init__(self, anchors: Iterable[Anchor] = ()) -> None:
        self.heads: dict[str, tuple[str, ...]] = {}
        self.suspicious: dict[str, None] = {}  # ordered set
        self.findings: list[Finding] = []
        self.events = 0
        self.last_seq = 0
        self._anchors = sorted(anchors, key=lambda a: a.events)
        self._check_anchors()

    def feed(self, entry: Entry) -> None:
        self.events += 1
        self.last_seq = entry.seq
        self.findings.extend(check_entry(entry))
        cid = entry.complaint_id
        expected = self.heads.get(cid) or (genesis_hash(cid),)
        if entry.prev is not None and entry.prev not in expected:
            self.suspicious[cid] = None
        self.heads[cid] = entry.names
        self._check_anchors()

    def _check_anchors(self) -> None:
        while self._anchors and self._anchors[0].events <= self.events:
            anchor = self._anchors.pop(0)
            digest = heads_digest(self.heads)
            if digest != anchor.digest:
                self.findings.append(
                    Finding(
                        self.last_seq,
                        None,
                        ANCHOR_MISMATCH,
                        f"after {anchor.events} event(s) the chains end in {digest[:12]}…, "
                        f"the anchor says {anchor.digest[:12]}…: an event up to here was "
                        "removed, inserted or rewritten",
                    )
                )

    def report(self, stream: str, link_findings: Iterable[Finding] = ()) -> AuditReport:
        findings = list(self.findings)
        findings += link_findings
        for anchor in self._anchors:  # not reached: the log is shorter than it was
            findings.append(
                Finding(
                    None,
                    None,
                    TRUNCATED,
                    f"the log holds {self.events} event(s), the anchor {anchor.events}",
                )
            )
        findings.sort(key=lambda f: (f.seq is None, f.seq or 0, f.kind))
        return AuditReport(
            stream=stream,
            events=self.events,
            complaints=len(self.heads),
            last_seq=self.last_seq,
            findings=findings,
            anchor=Anchor(self.events, heads_digest(self.heads)),
        )


def audit_entries(
    entries: Iterable[Entry], anchors: Iterable[Anchor] = (), stream: str = "memory"
) -> AuditReport:
    """:func:`verify` over events in memory (in log order)."""
    entries = list(entries)
    walk = Walk(anchors)
    for e in entries:
        walk.feed(e)
    links = [
        f
        for cid in walk.suspicious
        for f in classify_chain(cid, [e for e in entries if e.complaint_id == cid])
    ]
    return walk.report(stream, links)


async def verify(
    js: JetStreamContext,
    stream: str,
    subjects: Subjects,
    progress: Progress | None = None,
    anchors: Iterable[Anchor] = (),
) -> AuditReport:
    """Walk ``stream`` (events under ``subjects.all_events``) up to its current end and
    report every altered, missing, reordered, forked or unchained event; with anchors
    taken earlier, also a truncated or rewritten log."""
    state = (await js.stream_info(stream)).state
    walk = Walk(anchors)
    if state.messages:
        await walk_log(js, stream, subjects, state.last_seq, state.messages, walk, progress)
    links: list[Finding] = []
    for cid in walk.suspicious:
        entries = await complaint_entries(js, stream, subjects, cid, walk.last_seq)
        links += classify_chain(cid, entries)
    return walk.report(stream, links)


async def walk_log(
    js: JetStreamContext,
    stream: str,
    subjects: Subjects,
    end: int,
    total: int,
    walk: Walk,
    progress: Progress | None,
) -> None:
    """Feed ``walk`` every event up to ``end`` in order, through an ordered push consumer
    (no acks; the client restarts it from the last sequence seen if a message is lost)."""
    done = asyncio.Event()
    failure: list[Exception] = []

    async def on_message(msg: Msg) -> None:
        if done.is_set():
            return
        meta = msg.metadata
        seq = meta.sequence.stream
        if seq > end:  # appended after the walk began
            done.set()
            return
        try:
            walk.feed(make_entry(subjects, seq, msg.subject, msg.data, msg.headers))
        except Exception as e:
            failure.append(e)
            done.set()
            return
        if progress is not None and walk.events % PROGRESS_EVERY == 0:
            progress(walk.events, total)
        if seq >= end or meta.num_pending == 0:
            done.set()

    sub = await js.subscribe(
        subjects.all_events,
        stream=stream,
        cb=on_message,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    try:
        seen = 0
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), IDLE_SECONDS)
            except TimeoutError:
                # Nothing for a while: done if nothing is left to deliver (e.g. the
                # stream holds no complaint events, or its last ones were deleted).
                if walk.events == seen and not (await sub.consumer_info()).num_pending:
                    break
                seen = walk.events
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    if failure:
        raise failure[0]
    if progress is not None:
        progress(walk.events, total)


async def complaint_entries(
    js: JetStreamContext, stream: str, subjects: Subjects, complaint_id: str, end: int = 0
) -> list[Entry]:
    """Every event of one complaint in log order (up to sequence ``end``, if given)."""
    entries: list[Entry] = []
    seq = 1
    while True:
        try:
            raw = await js.get_msg(
                stream, seq=seq, subject=subjects.complaint_all(complaint_id), next=True
            )
        except NotFoundError:
            return entries
        if end and raw.seq > end:
            return entries
        entries.append(
            make_entry(subjects, raw.seq, raw.subject or "", raw.data, raw.headers, raw.time)
        )
        seq = raw.seq + 1


# --- anchors kept where the next run finds them ------------------------------------------

ANCHOR_HISTORY = 64
"""Anchors kept per log, the most NATS keeps of one key. The latest alone covers every
event before it (each complaint's head hash depends on all of its events); earlier ones
narrow down when a change happened."""

DELETED = frozenset({"DEL", "PURGE"})


def anchor_bucket(subjects: Subjects) -> str:
    """``<ROOT>_AUDIT``: the key-value bucket where ``lapor audit verify`` keeps anchors."""
    return subjects.events_stream.removesuffix("_EVENTS") + "_AUDIT"


@dataclass(frozen=True)
class KeptAnchor:
    """An anchor as a clean run kept it: where the log ended then, and when."""

    anchor: Anchor
    last_seq: int
    complaints: int
    at: datetime
    revision: int = 0

    def describe(self) -> str:
        return (
            f"{self.anchor} (up to seq {self.last_seq}, kept {self.at:%Y-%m-%d %H:%M} UTC, "
            f"revision {self.revision})"
        )

    def to_json(self, stream: str) -> bytes:
        return json.dumps(
            {
                "stream": stream,
                "events": self.anchor.events,
                "digest": self.anchor.digest,
                "last_seq": self.last_seq,
                "complaints": self.complaints,
                "at": self.at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes, revision: int) -> KeptAnchor:
        doc = json.loads(data)
        anchor = Anchor.parse(f"{doc['events']}:{doc['digest']}")
        at = datetime.fromisoformat(doc["at"])
        return cls(anchor, int(doc["last_seq"]), int(doc["complaints"]), at, revision)


class AnchorStore:
    """The anchors of clean runs, per log, in the bucket :func:`anchor_bucket` names."""

    def __init__(self, js: JetStreamContext, subjects: Subjects, *, replicas: int = 1) -> None:
        self.js, self.bucket, self.replicas = js, anchor_bucket(subjects), replicas

    @staticmethod
    def key(stream: str) -> str:
        return f"anchor.{stream}"

    async def kept(self, stream: str) -> list[KeptAnchor]:
        """Every anchor kept for ``stream``, oldest first (none: no bucket, no key, or
        forgotten). Reads only: a first run creates nothing until it keeps one."""
        # Read from the bucket's stream one revision after the other, not with nats-py's
        # ``kv.history``: its watcher can signal "no more" before the entries it was
        # delivered are counted (seen under load: an empty history of a kept key).
        kv_stream, subject = f"KV_{self.bucket}", f"$KV.{self.bucket}.{self.key(stream)}"
        found, seq = [], 1
        while True:
            try:
                raw = await self.js.get_msg(kv_stream, seq=seq, subject=subject, next=True)
            except NotFoundError:  # no bucket, or no revision after seq
                return found
            seq = (raw.seq or seq) + 1
            if (raw.headers or {}).get("KV-Operation") in DELETED or not raw.data:
                continue
            try:
                found.append(KeptAnchor.from_json(raw.data, raw.seq or 0))
            except (ValueError, KeyError, TypeError):
                log.warning("audit: an unreadable anchor record", revision=raw.seq)

    async def keep(self, report: AuditReport) -> KeptAnchor:
        """Keep the anchor of a clean ``report`` (the latest one again if the log has not
        grown since: the history then still reaches back as far)."""
        if not report.ok:
            raise ValueError("only the anchor of a clean run is kept")
        kept = await self.kept(report.stream)
        if kept and kept[-1].anchor == report.anchor:
            return kept[-1]
        anchor = KeptAnchor(report.anchor, report.last_seq, report.complaints, datetime.now(UTC))
        kv = await self._bucket()
        revision = await kv.put(self.key(report.stream), anchor.to_json(report.stream))
        log.info("audit anchor kept", bucket=self.bucket, anchor=str(report.anchor))
        return KeptAnchor(anchor.anchor, anchor.last_seq, anchor.complaints, anchor.at, revision)

    async def forget(self, stream: str, *, by: str, reason: str) -> list[KeptAnchor]:
        """Drop the anchors kept for ``stream`` (after a restore that lost events on
        purpose): the decision, and what was dropped, stay under ``forgotten.<stream>``."""
        forgotten = await self.kept(stream)
        kv = await self._bucket()
        record = {
            "by": by,
            "reason": reason,
            "at": datetime.now(UTC).isoformat(),
            "anchors": [str(k.anchor) for k in forgotten],
        }
        await kv.put(f"forgotten.{stream}", json.dumps(record).encode())
        await kv.purge(self.key(stream))
        log.warning("audit anchors forgotten", bucket=self.bucket, by=by, reason=reason)
        return forgotten

    async def _bucket(self) -> KeyValue:
        try:
            return await self.js.key_value(self.bucket)
        except BucketNotFoundError:
            return await self.js.create_key_value(
                KeyValueConfig(
                    bucket=self.bucket,
                    history=ANCHOR_HISTORY,
                    storage=StorageType.FILE,
                    replicas=self.replicas,
                    description="Anchors of clean lapor audit runs (lapor.ops.audit)",
                )
            )


@dataclass(frozen=True)
class KeptAudit:
    """A verification against the given and the kept anchors, and what it kept."""

    report: AuditReport
    compared: list[KeptAnchor]
    kept: KeptAnchor | None
    bucket: str

    def describe(self) -> list[str]:
        lines = self.report.describe()
        if self.compared:
            lines.append(
                f"compared with {len(self.compared)} anchor(s) kept in {self.bucket}, "
                f"the latest {self.compared[-1].describe()}"
            )
        else:
            lines.append(f"no anchor kept in {self.bucket} yet")
        if self.kept is not None:
            again = bool(self.compared) and self.kept == self.compared[-1]
            already = "already " if again else ""
            lines.append(f"anchor {already}kept in {self.bucket} (revision {self.kept.revision})")
        elif not self.report.ok:
            lines.append("anchor not kept: the log has findings")
        return [printable(line) for line in lines]


async def verify_kept(
    js: JetStreamContext,
    subjects: Subjects,
    *,
    anchors: Iterable[Anchor] = (),
    keep: bool = True,
    replicas: int = 1,
    progress: Progress | None = None,
) -> KeptAudit:
    """:func:`verify` the log of ``subjects`` against ``anchors`` and every anchor kept
    for it; keep this run's anchor if it is clean (and ``keep``)."""
    stream = subjects.events_stream
    store = AnchorStore(js, subjects, replicas=replicas)
    compared = await store.kept(stream)
    every = dict.fromkeys([*anchors, *(k.anchor for k in compared)])
    report = await verify(js, stream, subjects, progress, anchors=every)
    kept = await store.keep(report) if keep and report.ok else None
    return KeptAudit(report, compared, kept, store.bucket)


# --- the auditor's view of one complaint -------------------------------------------------

_DEFAULT_ACTORS: dict[str, tuple[str, str | None]] = {
    ev.ComplaintReceived.TYPE: ("reporter", None),
    ev.ReporterReplied.TYPE: ("reporter", None),
    ev.ComplaintRated.TYPE: ("reporter", None),
    ev.ComplaintReopened.TYPE: ("reporter", None),
    ev.ComplaintRouted.TYPE: ("system", "router"),
    ev.DeadlineWarned.TYPE: ("system", "tracker"),
    ev.DeadlineBreached.TYPE: ("system", "tracker"),
}


def actor_of(event_type: str, payload: Mapping[str, Any]) -> dict[str, str | None]:
    """Who did it: the payload's ``by`` actor, an officer of the payload's unit, or who
    the event type implies (the reporter, or the system)."""
    by = payload.get("by")
    if isinstance(by, Mapping) and by.get("role"):
        return {"role": by["role"], "opd": by.get("opd"), "name": by.get("name")}
    if "officer" in payload:
        return {"role": "agency", "opd": payload.get("opd"), "name": payload.get("officer")}
    role, name = _DEFAULT_ACTORS.get(event_type, ("unknown", None))
    return {"role": role, "opd": None, "name": name}


def _who(actor: Mapping[str, str | None]) -> str:
    text = actor["role"] or "unknown"
    if actor.get("opd"):
        text += f" {actor['opd']}"
    if actor.get("name"):
        text += f" ({actor['name']})"
    return text


def summarise(env: Envelope) -> str:
    """The event in one line (``lapor.shared.words``); its type alone when it cannot be
    read as an event (the audit reports what a log holds, whatever it holds)."""
    try:
        return words.summary(decode(env))
    except (ValidationError, UnknownEvent, KeyError):
        return env.type


def history_item(entry: Entry, findings: Sequence[Finding]) -> dict[str, Any]:
    """One line of a complaint's history for an auditor, with its chain verdict."""
    item: dict[str, Any] = {
        "seq": entry.seq,
        "stored_at": entry.time.isoformat() if entry.time else None,
        "hash": entry.stored,
        "chain": "broken" if findings else "ok",
        "problems": [f"{f.kind}: {f.detail}" for f in findings],
    }
    try:
        env = parse(entry.data)
    except ValueError:
        event_type = header(entry.headers, "Lapor-Event-Type") or entry.subject
        actor: dict[str, str | None] = {"role": "unknown", "opd": None, "name": None}
        return {
            **item,
            "occurred_at": None,
            "type": event_type,
            "who": "unknown",
            "actor": actor,
            "summary": "unreadable event data",
            "event_id": None,
            "correlation_id": None,
        }
    actor = actor_of(env.type, env.payload)
    return {
        **item,
        "occurred_at": env.occurred_at.isoformat(),
        "type": env.type,
        "who": _who(actor),
        "actor": actor,
        "summary": summarise(env),
        "event_id": str(env.event_id),
        "correlation_id": str(env.correlation_id),
    }


def entries_history(complaint_id: str, entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """:func:`complaint_history` over events in memory."""
    findings = [f for e in entries for f in check_entry(e)]
    findings += classify_chain(complaint_id, entries)
    by_seq: dict[int | None, list[Finding]] = defaultdict(list)
    for f in findings:
        by_seq[f.seq].append(f)
    return [history_item(e, by_seq[e.seq]) for e in entries]


async def complaint_history(
    js: JetStreamContext, subjects: Subjects, tracking_id: str
) -> list[dict[str, Any]]:
    """Every event of one complaint, in log order, for an auditor: ``seq``,
    ``occurred_at`` (as the event says), ``stored_at`` (as the server recorded),
    ``type``, ``who`` (and ``actor``: role, opd, name), ``summary``, ``event_id``,
    ``correlation_id``, ``hash``, and ``chain``: "ok", or "broken" with ``problems``.

    The chain is checked within the complaint (altered, missing, reordered, forked,
    unchained); a removed *last* event only an anchor over the whole log can show."""
    entries = await complaint_entries(js, subjects.events_stream, subjects, tracking_id)
    return entries_history(tracking_id, entries)


def describe_history(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Printable lines of :func:`complaint_history`: what came from the log (a citizen's
    text, names, types) is escaped, so it cannot drive the auditor's terminal."""
    lines = []
    for item in history:
        when = (item["occurred_at"] or item["stored_at"] or "?")[:19]
        mark = "ok" if item["chain"] == "ok" else "BROKEN"
        lines.append(f"{item['seq']:>7}  {when}  {item['who']:<30} {item['summary']}  [{mark}]")
        lines.extend(f"{'':>9}! {problem}" for problem in item["problems"])
    return [printable(line) for line in lines]


# --- what a terminal may be shown ---------------------------------------------------------

_BIDI_CONTROLS = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
"""Marks, embeddings, overrides and isolates: they reorder what a terminal shows, so a
line can read differently from what it holds ("Trojan Source")."""
_LINE_BREAKS = {0x2028, 0x2029}  # some terminals break the line on them


def printable(text: str) -> str:
    """``text`` with everything that could act on a terminal shown as an escape instead:
    C0 and C1 controls and DEL (ESC [ ... colour and cursor sequences, OSC titles and
    links, BEL, a carriage return or newline that forges a line), bidirectional
    controls and Unicode line separators; ``\\`` is doubled, so an escape in the output is
    never something a citizen typed. Everything else, Indonesian and all, stays as is."""
    return "".join(_escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if code in _BIDI_CONTROLS or code in _LINE_BREAKS:
        return f"\\u{code:04x}"
    return char
