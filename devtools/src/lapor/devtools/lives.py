"""Complaints' lives made up for tests: random walks through the lifecycle, and a log in
which many of them interleave as they do in the real one.

Seeded by the caller's ``random.Random``, so a test that fails gives the same log again.
The walks take every turn the lifecycle has, including orders it would refuse: read
models must be total over valid events in any order, and these lives check that they are.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from lapor.shared.envelope import Event
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    Channel,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintPutOnHold,
    ComplaintRated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintResumed,
    ComplaintRouted,
    DeadlineBreached,
    DeadlineStep,
    DeadlineWarned,
    FollowUpPosted,
    ReporterReplied,
    ReportType,
)

ADMIN, OFFICER, REPORTER = Actor(role="admin"), Actor(role="agency"), Actor(role="reporter")
UNITS = ("dpupr", "dlh", "dishub", "pemprov_kalbar")
"""The agencies (OPD) a complaint is routed, disposed and declined between."""


def random_life(rng: random.Random, units: Sequence[str] = UNITS) -> Iterator[Event]:
    """One complaint's events: a random walk through the lifecycle."""
    yield ComplaintReceived(
        title="Laporan warga nomor " + str(rng.randrange(1000)),
        body="Isi laporan warga yang cukup panjang untuk diterima.",
        channel=rng.choice(list(Channel)),
        report_type=rng.choice(list(ReportType)),
        category=rng.choice(["jalan", "sampah", None]),
        anonymous=rng.random() < 0.2,
        confidential=rng.random() < 0.1,
    )
    unit = rng.choice(units)
    for _ in range(rng.randrange(12)):
        roll = rng.random()
        step = rng.choice(list(DeadlineStep))
        due = datetime(2026, 8, 20, 16, 59, tzinfo=UTC)
        yield rng.choice(
            [
                ComplaintRouted(
                    opd=unit,
                    opd_name=unit.upper(),
                    rule="category:x",
                    reason="r",
                    confidence=roll,
                    rules_version="t",
                ),
                ComplaintDisposed(opd=unit, opd_name=unit.upper(), by=ADMIN, automatic=roll > 0.5),
                AuthorityDeclined(opd=unit, reason="Bukan kewenangan kami", by=OFFICER),
                ComplaintPutOnHold(reason="Menunggu data", by=OFFICER),
                ComplaintResumed(by=OFFICER),
                FollowUpPosted(opd=unit, message="Tim sudah meninjau lokasi"),
                ComplaintResolved(opd=unit, resolution="Sudah diperbaiki"),
                ReporterReplied(message="Terima kasih"),
                ComplaintRated(stars=rng.randint(1, 5)),
                ComplaintReopened(reason="Belum beres"),
                ComplaintClosed(reason="confirmed_by_reporter", by=REPORTER),
                DeadlineWarned(step=step, due_at=due, opd=unit),
                DeadlineBreached(step=step, due_at=due, opd=unit, escalated_to="diskominfo"),
            ]
        )
        # Now and then the complaint moves on to another agency, so that later events
        # name a unit other than the one it was first routed to.
        if roll < 0.15:
            unit = rng.choice(units)
    if rng.random() < 0.1:
        yield ComplaintArchived(reason=ArchiveReason.DUPLICATE, by=ADMIN)


def interleave(
    rng: random.Random, lives: Mapping[str, Sequence[Event]], start: datetime
) -> Iterator[tuple[str, Event, datetime]]:
    """The events of ``lives`` (by complaint id) as a log holds them: each complaint's in
    its own order, the complaints' mixed at random, each a few minutes to ten hours after
    the one before it from ``start``. Yields complaint id, event, and when it occurred."""
    # Copies: the caller's lives stay whole, and popping from the left stays cheap.
    left = {cid: deque(events) for cid, events in lives.items() if events}
    at = start
    while left:
        # Sorted, so that the same seed picks the same complaints whatever order the
        # caller's mapping has.
        cid = rng.choice(sorted(left))
        event = left[cid].popleft()
        if not left[cid]:
            del left[cid]
        at += timedelta(minutes=rng.randrange(1, 600))
        yield cid, event, at
