"""A known history of five complaints, small enough to recompute every figure by hand.

All instants are local (WIB, UTC+7). 2024-03-11 (Nyepi) is a public holiday.

* A (web, pengaduan, jalan): received Thu 7 Mar 09:00; disposed to dpupr Tue 12 Mar (2
  working days); followed up Wed 13 (3; 1 after disposition: on time); answered Thu 14;
  rated 5; closed Mon 18 Mar (6).
* B (sms, pengaduan, sampah): received Mon 4 Mar 09:00; disposed to dpupr the same day (0);
  "not our authority" Tue 5 (a hop); disposed to dlh Wed 6 (the follow-up clock restarts,
  due the end of Thu 14 because of Nyepi); deadline breached; first follow-up Fri 15 Mar
  (8 working days after receipt; late); rated 2, then 3 (the latest counts). Not finished.
* C (mobile_app, aspirasi, no category): received Mon 1 Apr 09:00; disposed to dlh Tue 2
  (1); followed up Wed 3 (2; on time); closed Thu 4, reopened Fri 5, closed Mon 8 Apr (5).
* D (web, pengaduan, jalan): received Tue 2 Apr; disposed to dpupr, declined (a hop) and
  archived Wed 3 Apr: not a valid complaint, in no figure but ``archived``.
* E (web, pengaduan, jalan): received 01:00 on Mon 1 Apr local (still 31 March in UTC: the
  local month counts); disposed to dpupr Tue 2 Apr (1); never followed up (due the end of
  Tue 9 Apr; 10 and 11 Apr are holidays but do not matter).

A and B are the first batch (March); C, D and E the second (April).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from lapor.shared.envelope import Event
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    Channel,
    ComplaintArchived,
    ComplaintClosed,
    ComplaintDisposed,
    ComplaintRated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    DeadlineBreached,
    DeadlineStep,
    FollowUpPosted,
    ReportType,
)

WIB = ZoneInfo("Asia/Pontianak")
A, B, C, D, E = "AAAAA-0000A", "BBBBB-0000B", "CCCCC-0000C", "DDDDD-0000D", "EEEEE-0000E"
ADMIN, REPORTER = Actor(role="admin"), Actor(role="reporter")
NAMES = {"dpupr": "Dinas PUPR", "dlh": "Dinas Lingkungan Hidup"}

History = list[tuple[str, Event, datetime]]


def wib(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=WIB)


def received(channel: Channel, report_type: ReportType, category: str | None) -> Event:
    return ComplaintReceived(
        title="Laporan warga",
        body="Isi laporan warga yang cukup panjang.",
        channel=channel,
        report_type=report_type,
        category=category,
    )


def disposed(opd: str) -> Event:
    return ComplaintDisposed(opd=opd, opd_name=NAMES[opd], by=ADMIN, automatic=False)


def declined(opd: str) -> Event:
    return AuthorityDeclined(opd=opd, reason="Bukan kewenangan kami", by=Actor(role="agency"))


def followed_up(opd: str) -> Event:
    return FollowUpPosted(opd=opd, message="Tim sudah meninjau lokasi")


def closed() -> Event:
    return ComplaintClosed(reason="confirmed_by_reporter", by=REPORTER)


def first_batch() -> History:
    return [
        (B, received(Channel.SMS, ReportType.COMPLAINT, "sampah"), wib(3, 4)),
        (B, disposed("dpupr"), wib(3, 4, 14)),
        (B, declined("dpupr"), wib(3, 5)),
        (B, disposed("dlh"), wib(3, 6, 10)),
        (A, received(Channel.WEB, ReportType.COMPLAINT, "jalan"), wib(3, 7)),
        (A, disposed("dpupr"), wib(3, 12)),
        (A, followed_up("dpupr"), wib(3, 13)),
        (A, ComplaintResolved(opd="dpupr", resolution="Lubang sudah ditambal"), wib(3, 14)),
        (A, ComplaintRated(stars=5), wib(3, 15)),
        (
            B,
            DeadlineBreached(
                step=DeadlineStep.FIRST_FOLLOW_UP,
                due_at=datetime(2024, 3, 14, 23, 59, 59, tzinfo=WIB),
                opd="dlh",
                escalated_to="diskominfo",
            ),
            wib(3, 15, 0),
        ),
        (B, followed_up("dlh"), wib(3, 15, 10)),
        (B, ComplaintRated(stars=2), wib(3, 16)),
        (B, ComplaintRated(stars=3), wib(3, 17)),
        (A, closed(), wib(3, 18)),
    ]


def second_batch() -> History:
    return [
        (E, received(Channel.WEB, ReportType.COMPLAINT, "jalan"), wib(4, 1, 1)),
        (C, received(Channel.MOBILE_APP, ReportType.ASPIRATION, None), wib(4, 1)),
        (C, disposed("dlh"), wib(4, 2)),
        (D, received(Channel.WEB, ReportType.COMPLAINT, "jalan"), wib(4, 2)),
        (D, disposed("dpupr"), wib(4, 2, 10)),
        (E, disposed("dpupr"), wib(4, 2, 11)),
        (D, declined("dpupr"), wib(4, 3)),
        (D, ComplaintArchived(reason=ArchiveReason.DUPLICATE, by=ADMIN), wib(4, 3, 10)),
        (C, followed_up("dlh"), wib(4, 3)),
        (C, closed(), wib(4, 4)),
        (C, ComplaintReopened(reason="Belum beres"), wib(4, 5)),
        (C, closed(), wib(4, 8)),
    ]


@pytest.fixture
def history() -> History:
    """Both batches, in log order."""
    return first_batch() + second_batch()


@pytest.fixture
def batches() -> tuple[History, History]:
    return first_batch(), second_batch()
