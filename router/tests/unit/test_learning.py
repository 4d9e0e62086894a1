"""Labels from the log: every human decision teaches the router (``lapor.router.learning``)."""

from __future__ import annotations

import uuid

from lapor.router.learning import WEIGHT, Labels
from lapor.shared.events import (
    Actor,
    ArchiveReason,
    AuthorityDeclined,
    ComplaintArchived,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
    ReporterIdentified,
)

ADMIN = Actor(role="admin", name="Admin Diskominfo")


def received(title: str, **extra) -> ComplaintReceived:
    return ComplaintReceived(title=title, body=f"{title}, mohon segera ditangani.", **extra)


def officer(opd: str) -> Actor:
    return Actor(role="agency", name="Admin penghubung", opd=opd)


def disposed(opd: str, automatic: bool = False) -> ComplaintDisposed:
    by = Actor(role="system", name="router") if automatic else ADMIN
    return ComplaintDisposed(opd=opd, opd_name=opd, by=by, automatic=automatic)


def routed(opd: str) -> ComplaintRouted:
    return ComplaintRouted(opd=opd, opd_name=opd, rule="model", reason="-", confidence=0.5,
                           rules_version="1")  # fmt: skip


def follow_up(opd: str) -> FollowUpPosted:
    return FollowUpPosted(opd=opd, message="Sudah kami tangani di lapangan.")


def label(events) -> list[tuple[str, str, str]]:
    labels = Labels()
    for cid, event in events:
        labels.add(cid, event)
    return [(e.complaint.title, e.unit, e.source) for e in labels.examples()]


def test_the_unit_that_acted_is_the_label_even_after_a_hop() -> None:
    a = uuid.uuid4()
    events = [
        (a, received("Kucing liar di kompleks")),
        (a, routed("dlh")),
        (a, disposed("dlh")),
        (
            a,
            AuthorityDeclined(
                opd="dlh", reason="Bukan kewenangan kami.", by=officer("dlh"), suggested_opd="dppkp"
            ),
        ),
        (a, routed("dppkp")),
        (a, disposed("dppkp")),
        (a, follow_up("dppkp")),
    ]
    assert label(events) == [("Kucing liar di kompleks", "dppkp", "acted")]


def test_a_coordinators_disposition_is_a_label_unless_declined() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [
        (a, received("Lampu gang mati")),
        (a, disposed("disperkim")),
        (b, received("Pasar becek sekali")),
        (b, disposed("dpupr")),
        (b, AuthorityDeclined(opd="dpupr", reason="Aset pasar bukan kami.", by=officer("dpupr"))),
    ]
    assert label(events) == [("Lampu gang mati", "disperkim", "disposed")]


def test_an_automatic_disposition_alone_teaches_nothing() -> None:
    # The router's own guess is not a human decision; only the unit acting on it is.
    a = uuid.uuid4()
    assert label([(a, received("Air PDAM mati")), (a, disposed("pdam", automatic=True))]) == []
    assert label([(a, received("Air PDAM mati")), (a, disposed("pdam", automatic=True)),
                  (a, follow_up("pdam"))]) == [("Air PDAM mati", "pdam", "acted")]  # fmt: skip


def test_confidential_and_archived_complaints_are_left_out() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [
        (a, received("Pungli di kantor", confidential=True)),
        (a, disposed("inspektorat")),
        (b, received("Iklan judi online")),
        (b, disposed("diskominfo")),
        (
            b,
            ComplaintArchived(
                reason=ArchiveReason.NOT_PUBLIC_SERVICE, note="Bukan layanan publik", by=ADMIN
            ),
        ),
    ]
    assert label(events) == []


def test_only_the_text_is_kept_never_the_reporter() -> None:
    a = uuid.uuid4()
    labels = Labels()
    labels.add(a, received("Jalan berlubang", anonymous=True))
    labels.add(a, ReporterIdentified(name="Budi", phone="+6281234567890", email=None))
    labels.add(a, disposed("dpupr"))
    [example] = labels.examples()
    assert example.weight == WEIGHT
    assert example.complaint.title == "Jalan berlubang"
    dumped = example.complaint.model_dump_json()
    assert "Budi" not in dumped and "6281234567890" not in dumped
