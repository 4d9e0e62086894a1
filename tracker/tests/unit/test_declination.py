"""Bukan Wewenang that helps: the declining officer may name the unit they believe is
authorized; the event records it, and a unit the registry does not know, or the declining
unit itself, is refused with the field and the reason, and nothing is appended.

No servers: the API runs in-process (ASGI, its lifespan not run) on a hand-written stand-in
for the event store.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from lapor.devtools.testing import bearer
from lapor.services.eventstore import StoredEvent
from lapor.services.settings import Settings
from lapor.shared.envelope import Envelope, Event, decode, envelope
from lapor.shared.events import (
    Actor,
    AuthorityDeclined,
    ComplaintDisposed,
    ComplaintReceived,
    ComplaintRouted,
    FollowUpPosted,
)
from lapor.shared.lifecycle import evolve
from lapor.tracker import domain
from lapor.tracker.app import create_app
from lapor.tracker.domain import InvalidInput, Status

CID = "7K3MQ-9X2AB"
AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ADMIN = Actor(role="admin")
DPUPR = Actor(role="agency", opd="dpupr", name="Petugas DPUPR")
SETTINGS = Settings(
    nats_url="nats://127.0.0.1:1",
    database_url="postgresql://nowhere/none",
    auth_secret="unit-test-secret-of-at-least-32-bytes",
    log_format="console",
)
LIFE: list[Event] = [
    ComplaintReceived(title="Sampah menumpuk", body="Sampah menumpuk di pinggir jalan pasar"),
    ComplaintRouted(
        opd="dpupr", opd_name="DPUPR", rule="r", reason="r", confidence=0.9, rules_version="t"
    ),
    ComplaintDisposed(opd="dpupr", opd_name="DPUPR", by=ADMIN, automatic=False),
    FollowUpPosted(opd="dpupr", message="Sedang ditinjau"),
]
DECLINATION = f"/agencies/dpupr/complaints/{CID}/declination"


def in_progress():
    state = None
    for event in LIFE:
        state = evolve(state, event, CID, AT)
    assert state is not None and state.status == Status.IN_PROGRESS
    return state


# --- the command --------------------------------------------------------------------


def test_the_declining_officer_names_the_authorized_unit_and_the_event_records_it():
    event = domain.decide(in_progress(), DPUPR, domain.decline("Urusan sampah", DPUPR, "dlh"))
    assert event == AuthorityDeclined(
        opd="dpupr", reason="Urusan sampah", by=DPUPR, suggested_opd="dlh"
    )
    after = evolve(in_progress(), event, CID, AT)
    assert after.status == Status.RECEIVED and after.declined_by == ("dpupr",)


def test_naming_no_unit_is_still_a_declination():
    event = domain.decide(in_progress(), DPUPR, domain.decline("Bukan kewenangan kami", DPUPR))
    assert isinstance(event, AuthorityDeclined) and event.suggested_opd is None


def test_the_declining_unit_cannot_name_itself():
    with pytest.raises(InvalidInput) as refused:
        domain.decide(in_progress(), DPUPR, domain.decline("r", DPUPR, "dpupr"))
    assert (refused.value.field, refused.value.reason) == (
        "suggested_opd",
        "is the declining unit itself",
    )


# --- the API ------------------------------------------------------------------------


class Log:
    """A hand-written stand-in for the event store: one complaint's log, and what is
    appended to it (with the sequence each append expected)."""

    def __init__(self, events: list[Event]) -> None:
        self.subjects = SETTINGS.subjects
        corr = uuid.uuid4()
        self.events = [
            StoredEvent(
                seq,
                self.subjects.complaint(CID, e.TYPE),
                envelope(e, complaint_id=CID, correlation_id=corr),
            )
            for seq, e in enumerate(events, start=1)
        ]
        self.appended: list[Envelope] = []

    async def load(self, complaint_id: str) -> list[StoredEvent]:
        return list(self.events) if complaint_id == CID else []

    async def last(self, complaint_id: str, event_type: str | None = None) -> StoredEvent | None:
        found = [
            e
            for e in await self.load(complaint_id)
            if event_type is None or e.envelope.type == event_type
        ]
        return found[-1] if found else None

    async def append(
        self, env: Envelope, expected_last_seq: int, headers: dict[str, str] | None = None
    ) -> int:
        assert expected_last_seq == len(self.events)
        self.appended.append(env)
        subject = self.subjects.complaint(env.complaint_id, env.type)
        self.events.append(StoredEvent(len(self.events) + 1, subject, env, headers or {}))
        return len(self.events)


@pytest.fixture
def log() -> Log:
    return Log(LIFE)


@pytest.fixture
async def client(log: Log) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SETTINGS)
    app.state.runtime.store = log  # in place of JetStream (the lifespan is not run)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as c:
        c.headers.update(bearer(SETTINGS, "agency", "dpupr"))
        yield c


async def test_a_known_unit_is_accepted_and_recorded(client: httpx.AsyncClient, log: Log):
    r = await client.post(DECLINATION, json={"reason": "Urusan sampah", "suggested_opd": "dlh"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == Status.RECEIVED
    [appended] = log.appended
    declined = decode(appended)
    assert isinstance(declined, AuthorityDeclined)
    assert (declined.opd, declined.suggested_opd) == ("dpupr", "dlh")


async def test_without_a_suggestion_the_declination_is_as_before(
    client: httpx.AsyncClient, log: Log
):
    r = await client.post(DECLINATION, json={"reason": "Bukan kewenangan kami"})
    assert r.status_code == 202, r.text
    [appended] = log.appended
    assert appended.payload.get("suggested_opd") is None
    declined = decode(appended)
    assert isinstance(declined, AuthorityDeclined) and declined.suggested_opd is None


@pytest.mark.parametrize(
    ("suggested", "reason"),
    [
        ("dinas_tidak_ada", "not a unit in the registry"),
        ("dpupr", "is the declining unit itself"),
    ],
)
async def test_an_unknown_unit_or_the_unit_itself_is_refused_and_nothing_appended(
    client: httpx.AsyncClient, log: Log, suggested: str, reason: str
):
    r = await client.post(DECLINATION, json={"reason": "r", "suggested_opd": suggested})
    assert r.status_code == 422, r.text
    assert r.json() == {
        "detail": "invalid request",
        "errors": [{"field": "suggested_opd", "reason": reason}],
    }
    assert log.appended == []


async def test_a_code_that_is_no_code_is_refused_by_its_pattern(
    client: httpx.AsyncClient, log: Log
):
    r = await client.post(DECLINATION, json={"reason": "r", "suggested_opd": "Dinas LH"})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["suggested_opd"]
    assert log.appended == []
