"""What the benchmark feeds the system: realistic complaints and a realistic event log.

The complaints are the demo set (41 reports from Pontianak, most with reporter contact),
each submission with its own Idempotency-Key as a channel would send. The event log
gives every complaint the life most complaints have: received, routed, disposed,
followed up, resolved, closed (six events), with payloads built once per demo complaint
by the real event models (and the real routing table), then stamped per complaint.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from lapor.router.domain import RoutingTable
from lapor.shared.envelope import Envelope, decode, envelope, parse
from lapor.shared.events import (
    Actor,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintRouted,
    Event,
    FollowUpPosted,
)
from lapor.shared.tracking import new_tracking_id

EVENTS_PER_COMPLAINT = 6


def demo_complaints() -> list[dict[str, Any]]:
    text = files("lapor.devtools").joinpath("demo_complaints.json").read_text("utf-8")
    return json.loads(text)


class Submissions:
    """Request bodies for ``POST /complaints``, serialised once; cycled through."""

    def __init__(self) -> None:
        self.templates = demo_complaints()
        self.bodies = [json.dumps(t).encode() for t in self.templates]
        self.with_reporter = sum(1 for t in self.templates if t.get("reporter")) / len(
            self.templates
        )

    def request(self, i: int) -> tuple[bytes, dict[str, str]]:
        headers = {"content-type": "application/json", "idempotency-key": uuid.uuid4().hex}
        return self.bodies[i % len(self.bodies)], headers


def received_envelope_json(complaint_id: str | None = None) -> bytes:
    """One realistic ``ComplaintReceived`` envelope, as intake would append it."""
    template = {k: v for k, v in demo_complaints()[0].items() if k != "reporter"}
    env = envelope(
        ComplaintReceived(**template),
        complaint_id=complaint_id or new_tracking_id(),
        correlation_id=uuid.uuid4(),
    )
    return env.to_json()


def random_uuids(per_read: int = 4096) -> Iterator[str]:
    """Random (version 4) UUIDs as strings, four times faster than ``str(uuid4())``: hex
    from one read of ``os.urandom`` for many."""
    while True:
        h = os.urandom(16 * per_read).hex()
        for at in range(0, 32 * per_read, 32):
            x = h[at : at + 32]
            yield f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:]}"


class EventLog:
    """Envelopes of whole complaint lives, as JSON bytes, generated quickly.

    Per demo complaint the six payloads are made once by the event models (the routing by
    the real routing table); per complaint only the envelope's ids and times change.
    """

    def __init__(self, start: datetime | None = None) -> None:
        table = RoutingTable.load()
        officer = "Rina (liaison officer)"
        self.lives: list[list[tuple[str, dict[str, Any]]]] = []
        for item in demo_complaints():
            received = ComplaintReceived(**{k: v for k, v in item.items() if k != "reporter"})
            decision = table.decide(received)
            events: list[Event] = [
                received,
                ComplaintRouted(
                    opd=decision.opd,
                    opd_name=decision.opd_name,
                    rule=decision.rule,
                    reason=decision.reason,
                    confidence=decision.confidence,
                    rules_version=decision.rules_version,
                    excluded=sorted(decision.excluded),
                    level=decision.level,
                ),
                ComplaintDisposed(
                    opd=decision.opd,
                    opd_name=decision.opd_name,
                    by=Actor(role="system", name="router"),
                    automatic=True,
                ),
                FollowUpPosted(
                    opd=decision.opd,
                    message="Laporan sudah kami terima dan tim sudah dijadwalkan ke lokasi.",
                    officer=officer,
                ),
                ComplaintResolved(
                    opd=decision.opd,
                    resolution="Sudah ditangani oleh tim lapangan; terima kasih atas laporannya.",
                    officer=officer,
                ),
                ComplaintClosed(reason="confirmed_by_reporter", by=Actor(role="reporter")),
            ]
            life = []
            for event in events:
                env = envelope(event, complaint_id="00000-00000", correlation_id=uuid.uuid4())
                life.append((event.TYPE, env.model_dump(mode="json")))
            self.lives.append(life)
        start = start or datetime.now(UTC) - timedelta(days=365)
        # A time with microseconds is written the same way everywhere (see WriterState).
        self.start = start if start.microsecond else start.replace(microsecond=1)
        self.state = WriterState(self.lives)
        self._forms: list[list[tuple[str, str, tuple[int, ...]]]] | None = None

    def complaints(
        self, count: int, chunk: int = 500, first: int = 0, first_seq: int = 1
    ) -> Iterator[tuple[str, str, str, bytes, bytes]]:
        """(complaint_id, event_type, event_id, envelope JSON, header lines) for ``count``
        whole lives (numbered from ``first``: a log grown in steps carries on where it
        stopped, its times later); the lives of ``chunk`` complaints at a time interleave,
        as concurrent complaints do in a log. The header lines are those the writers add to
        each event beside the transport's (``state``): the events must be appended in the
        order given, the first at sequence ``first_seq``, with nothing else in between."""
        templates = self._templates()
        uuids = random_uuids()
        seq = first_seq
        for start in range(first, first + count, chunk):
            batch = range(start, min(start + chunk, first + count))
            ids = {i: new_tracking_id() for i in batch}
            correlation = {i: next(uuids) for i in batch}
            causes: dict[int, str] = dict.fromkeys(batch, "null")
            began = {i: self.start + timedelta(seconds=30 * i) for i in batch}
            # The writers' headers of a chunk's first two lives are checked, in the first
            # chunk and every 100th.
            check = start == first or (start // chunk) % 100 == 0
            lives = {i: Life(ids[i], check and i < start + 2) for i in batch}
            for step in range(EVENTS_PER_COMPLAINT):
                later = timedelta(hours=20 * step)
                for i in batch:
                    life = lives[i]
                    event_type, form, order = templates[i % len(templates)][step]
                    event_id = next(uuids)
                    at = (began[i] + later).isoformat()
                    values = (event_id, ids[i], correlation[i], causes[i], at)
                    data = (form % tuple(values[n] for n in order)).encode()
                    causes[i] = f'"{event_id}"'
                    life.seen(event_id, at, seq, data)
                    headers = self.state.lines(i % len(templates), step, life)
                    seq += 1
                    yield ids[i], event_type, event_id, data, headers

    def _templates(self) -> list[list[tuple[str, str, tuple[int, ...]]]]:
        """Each life's envelopes as JSON with a ``%s`` where each value that changes per
        event goes (the causation quoted, or null), and which value goes in each: the same
        bytes as ``json.dumps`` of the stamped envelope, made several times faster."""
        if self._forms is None:
            fields = ("event_id", "complaint_id", "correlation_id", "causation_id", "occurred_at")
            marked = re.compile('"@@(' + "|".join(fields) + ')@@"')
            self._forms = []
            for life in self.lives:
                forms = []
                for event_type, template in life:
                    text = json.dumps(
                        {**template, **{f: f"@@{f}@@" for f in fields}}, separators=(",", ":")
                    ).replace("%", "%%")
                    order = tuple(fields.index(m) for m in marked.findall(text))
                    form = marked.sub(lambda m: "%s" if m[1] == "causation_id" else '"%s"', text)
                    forms.append((event_type, form, order))
                self._forms.append(forms)
        return self._forms


class Life:
    """What the writers' headers of a complaint's next event depend on: its id, and each
    earlier event's id, time (as pydantic writes it), sequence and data."""

    __slots__ = ("checked", "complaint_id", "datas", "event_ids", "seqs", "snapshot", "times")

    def __init__(self, complaint_id: str, checked: bool = False) -> None:
        self.complaint_id = complaint_id
        self.checked = checked
        self.event_ids: list[str] = []
        self.times: list[str] = []
        self.seqs: list[int] = []
        self.datas: list[bytes] = []
        self.snapshot: tuple[int, Any] | None = None  # (step, the module's own snapshot)

    def seen(self, event_id: str, occurred_at: str, seq: int, data: bytes) -> None:
        self.event_ids.append(event_id)
        self.times.append(occurred_at.replace("+00:00", "Z"))
        self.seqs.append(seq)
        self.datas.append(data)


class WriterState:
    """The header each writer of the log puts on an event beside the transport's: the
    complaint's state after it (``lapor.shared.snapshot``, where installed: what
    ``decide_and_append`` and intake write, and what a writer reads back instead of the
    history). Made by the snapshot module itself once per demo life and step, on marker
    values (complaint id, event ids, times, sequences), then stamped per complaint like the
    envelopes; checked against the module's own output for two complaints in the first
    chunk of every run and in every 100th. When they differ (the module folds something
    the markers miss), every header is made by the module instead (~20 us an event more)
    and ``mode`` says so."""

    CID = "ZZZZZ-ZZZZZ"
    SEQ = 987_650_000

    def __init__(self, lives: list[list[tuple[str, dict[str, Any]]]]) -> None:
        try:
            from lapor.shared import snapshot
        except ImportError:  # events carry no state here
            self.module = None
            self.mode = "none (no lapor.shared.snapshot)"
            return
        self.module = snapshot
        self.mode = "stamped from the snapshot module's output on markers"
        self.exact = False
        self.lives = lives
        self.events = [
            [decode(Envelope.model_validate({**env, "complaint_id": self.CID})) for _, env in life]
            for life in lives
        ]
        self.forms = [self._forms(n) for n in range(len(lives))]

    def _forms(self, life: int) -> list[list[tuple[str, str, tuple[tuple[str, int], ...]]]]:
        """Per step, each header as (name, %-form, what goes in each %s)."""
        assert self.module is not None
        forms = []
        snap = None
        marks: dict[str, tuple[str, int]] = {}
        for step, (_, env) in enumerate(self.lives[life]):
            event_id = f"00000000-0000-4000-8000-{step:012d}"
            when = datetime(2001, 2, 3, 4, 5, 6, 100_000 + step, tzinfo=UTC)
            stamped = Envelope.model_validate(
                {**env, "complaint_id": self.CID, "event_id": event_id, "occurred_at": when}
            )
            prev = self.SEQ + step - 1 if step else 0
            snap = self.module.after(snap, self.events[life][step], stamped, prev)
            marks[event_id] = ("e", step)
            marks[when.isoformat().replace("+00:00", "Z")] = ("t", step)
            pattern = re.compile(
                "|".join(
                    [re.escape(self.CID), *(re.escape(m) for m in marks)]
                    + [f"(?<![0-9]){self.SEQ + k}(?![0-9])" for k in range(step + 1)]
                )
            )
            headers = []
            for name, value in self.module.headers(snap).items():
                order: list[tuple[str, int]] = []

                def mark(m: re.Match[str], order: list[tuple[str, int]] = order) -> str:
                    text = m[0]
                    if text == self.CID:
                        order.append(("c", 0))
                    elif text in marks:
                        order.append(marks[text])
                    else:
                        order.append(("s", int(text) - self.SEQ))
                    return "%s"

                form = pattern.sub(mark, value.replace("%", "%%"))
                headers.append((name, form, tuple(order)))
            forms.append(headers)
        return forms

    def lines(self, life: int, step: int, of: Life) -> bytes:
        """The header lines (``Name: value`` and CRLF each) of the ``step``-th event of a
        complaint living demo life ``life``, its data already ``seen``."""
        if self.module is None:
            return b""
        if self.exact:
            return self._exact(step, of)
        out = []
        for name, form, order in self.forms[life][step]:
            values = tuple(
                of.complaint_id
                if kind == "c"
                else of.event_ids[k]
                if kind == "e"
                else of.times[k]
                if kind == "t"
                else of.seqs[k]
                for kind, k in order
            )
            out.append(f"{name}: {form % values}\r\n")
        stamped = "".join(out).encode()
        if of.checked:
            exact = self._exact(step, of)
            if exact != stamped:
                self.exact = True
                self.mode = (
                    "made by the snapshot module for every event: stamping markers gave "
                    f"{stamped[:300]!r} where the module wrote {exact[:300]!r}"
                )
                return exact
        return stamped

    def _exact(self, step: int, of: Life) -> bytes:
        """The header lines the snapshot module makes for this event: folded on from the
        complaint's previous snapshot, or over its events so far when that is not kept."""
        assert self.module is not None
        if of.snapshot is not None and of.snapshot[0] == step - 1:
            snap, todo = of.snapshot[1], [step]
        else:
            snap, todo = None, list(range(step + 1))
        for k in todo:
            env = parse(of.datas[k])
            snap = self.module.after(snap, decode(env), env, of.seqs[k - 1] if k else 0)
        of.snapshot = (step, snap)
        return "".join(f"{n}: {v}\r\n" for n, v in self.module.headers(snap).items()).encode()
