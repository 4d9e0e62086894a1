"""Hostile input never reaches the log, and whatever the log already holds stays readable.

Against the real intake and tracker on real NATS JetStream and PostgreSQL, every string
field of a submission is sent each value of a corpus of nasty text. Each answer is either
a 422 naming that field (and nothing appended), or a 202 after which the tracker's read
model holds the complaint and the text is in the log exactly as sent. Then: an event
with a NUL in it, as an old log may hold, is projected and replayed without a difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import nats
from nats.js import JetStreamContext

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.testing import as_reporter, bearer, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.ops.replay import replay
from lapor.services.eventstore import EventStore
from lapor.services.settings import Settings
from lapor.shared.envelope import Envelope, decode, parse
from lapor.shared.events import ComplaintReceived, ComplaintRouted, ReporterIdentified
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app as tracker_app

SUBMISSION: dict[str, Any] = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara motor.",
    "category": "jalan",
    "location": {
        "address": "Jl. Tanjungpura No. 5",
        "kecamatan": "Pontianak Selatan",
        "kelurahan": "Benua Melayu Darat",
    },
    "suggested_opd": "dpupr",
    "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890", "email": "siti@example.id"},
}


@dataclass(frozen=True)
class StringField:
    path: str
    template: str
    """How a fragment of the corpus is set in a plausible value of the field."""
    max_length: int | None
    filler: str = "a"
    free_text: bool = True
    """Anything storable must be accepted (codes, phone numbers and e-mail have a form)."""


FIELDS = [
    StringField("title", "Jalan {} rusak", 200),
    StringField("body", "Jalan di depan pasar {} rusak parah", 4000),
    StringField("category", "ja{}lan", 64, free_text=False),
    StringField("location.address", "Jl. Merdeka {} No. 5", 500),
    StringField("location.kecamatan", "Pontianak {} Kota", 100),
    StringField("location.kelurahan", "Darat {} Sekip", 100),
    StringField("suggested_opd", "dp{}upr", 64, free_text=False),
    StringField("reporter.name", "Siti {} Rahma", 200),
    StringField("reporter.phone", "+62812{}345678", 32, filler="1", free_text=False),
    StringField("reporter.email", "siti{}@example.id", None, free_text=False),
]

UNSTORABLE = {
    "NUL": "\x00",
    "SOH": "\x01",
    "BEL": "\x07",
    "ESC sequence": "\x1b[2J",
    "vertical tab": "\x0b",
    "DEL": "\x7f",
    "C1 PAD": "\x80",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
}
STORABLE = {
    "tab": "\t",
    "newline": "a\nb",
    "carriage return": "a\r\nb",
    "RTL override": "\u202etxt.exe",
    "zero-width joiner": "a\u200db",
    "BOM": "\ufeff",
    "emoji": "🙏🏽",
    "emoji ZWJ sequence": "👩‍👩‍👧‍👦",
    "combining marks": "e\u0301 a\u0308\u0323",
    "Indonesian": "Kelurahan Sungai Bangkong, Kec. Pontianak Kota — 'Ibu' Sri",
    "Jawi": "ڤونتيانق",
    "SQL": "'; DROP TABLE tracker.complaints; --",
    "HTML": "<script>alert('x')</script>",
    "percent NUL": "%00",
    "escaped NUL as text": "\\u0000",
    "backslashes": "C:\\\\lapor\\",
    "quotes": "\"kutip\" 'tunggal' `miring`",
    "template": "{{7*7}} ${7*7}",
    "replacement character": "\ufffd",
    "noncharacter": "\uffff",
}


@dataclass(frozen=True)
class Case:
    field: StringField
    label: str
    value: str
    storable: bool
    within_length: bool = True

    def body(self) -> bytes:
        """The submission with this value; ASCII-escaped JSON, so that a lone surrogate
        goes over the wire as ``\\ud800``, the way a hostile client would send it."""
        submission = copy.deepcopy(SUBMISSION)
        *parents, leaf = self.field.path.split(".")
        target = submission
        for part in parents:
            target = target[part]
        target[leaf] = self.value
        return json.dumps(submission, ensure_ascii=True).encode()

    def must_be_accepted(self) -> bool:
        return self.field.free_text and self.storable and self.within_length


def cases() -> list[Case]:
    found = []
    for field in FIELDS:
        for corpus, storable in ((STORABLE, True), (UNSTORABLE, False)):
            found += [
                Case(field, label, field.template.format(fragment), storable)
                for label, fragment in corpus.items()
            ]
        if field.max_length is not None:
            at_max = field.filler * field.max_length
            found.append(Case(field, "at the maximum length", at_max, True))
            found.append(Case(field, "one too long", at_max + field.filler, True, False))
            found.append(Case(field, "emoji at the maximum length", "🙏" * field.max_length, True))
    return found


async def submit_all(intake: httpx.AsyncClient, all_cases: list[Case]) -> list[httpx.Response]:
    """Every case at once, a few in flight at a time."""
    gate = asyncio.Semaphore(16)

    async def submit(case: Case) -> httpx.Response:
        async with gate:
            return await intake.post(
                "/complaints", content=case.body(), headers={"content-type": "application/json"}
            )

    return list(await asyncio.gather(*(submit(case) for case in all_cases)))


async def read_stream(js: JetStreamContext, stream: str) -> list[Envelope]:
    info = await js.stream_info(stream)
    if not info.state.messages:
        return []
    seqs = range(info.state.first_seq, info.state.last_seq + 1)
    return [parse((await js.get_msg(stream, seq)).data) for seq in seqs]


@contextlib.asynccontextmanager
async def jetstream(settings: Settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(settings.nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


def at_path(event: ComplaintReceived | ReporterIdentified, path: str) -> Any:
    value: Any = event
    for part in path.removeprefix("reporter.").split("."):
        value = getattr(value, part)
    return value


def as_sent(case: Case) -> str:
    if case.field.path == "reporter.email":
        return unicodedata.normalize("NFC", case.value)  # e-mail addresses are normalised
    return case.value


async def test_every_string_field_refuses_or_keeps_each_nasty_value(settings):
    all_cases = cases()
    async with serving(intake_app(settings)) as intake, serving(tracker_app(settings)) as tracker:
        responses = await submit_all(intake, all_cases)

        accepted: dict[str, Case] = {}
        for case, r in zip(all_cases, responses, strict=True):
            what = f"{case.field.path} with {case.label}: {r.status_code} {r.text[:300]}"
            assert r.status_code in (202, 422), what
            if r.status_code == 202:
                assert case.storable and case.within_length, what
                accepted[r.json()["tracking_id"]] = case
                continue
            assert not case.must_be_accepted(), what
            errors = r.json()["errors"]
            assert case.field.path in [e["field"] for e in errors], what
            assert all(case.value not in e["reason"] for e in errors), f"echoed: {what}"

        async def all_projected() -> bool:
            pages = await asyncio.gather(*(tracker.get(f"/complaints/{t}") for t in accepted))
            return all(page.status_code == 200 for page in pages)

        await eventually(all_projected)
        for tracking_id, case in accepted.items():
            if case.field.path == "title":
                page = (await tracker.get(f"/complaints/{tracking_id}")).json()
                assert page["title"] == case.value, case.label

    # Refused input appended nothing; accepted text is in the log exactly as sent.
    async with jetstream(settings) as js:
        received = await read_stream(js, settings.subjects.events_stream)
        contacts = await read_stream(js, settings.subjects.reporters_stream)
    assert sorted(env.complaint_id for env in received) == sorted(accepted)
    assert sorted(env.complaint_id for env in contacts) == sorted(accepted)
    for env in received + contacts:
        case = accepted[env.complaint_id]
        event = decode(env)
        assert isinstance(event, ComplaintReceived | ReporterIdentified)
        if isinstance(event, ReporterIdentified) == case.field.path.startswith("reporter."):
            assert at_path(event, case.field.path) == as_sent(case), case.label


async def test_action_bodies_refuse_unstorable_text_and_append_nothing(settings):
    cid = new_tracking_id()  # validation comes before the complaint is even looked up
    admin, officer = bearer(settings, "admin"), bearer(settings, "agency", "dpupr")
    reporter = as_reporter(settings, cid)
    unit = f"/agencies/dpupr/complaints/{cid}"
    requests = [
        (f"/complaints/{cid}/hold", {"reason": "Menunggu\x00"}, admin, "reason"),
        (f"/complaints/{cid}/archive", {"reason": "duplicate", "note": "\x1b[2J"}, admin, "note"),
        (f"{unit}/follow-ups", {"message": "Sudah\x7f ditinjau"}, officer, "message"),
        (f"{unit}/resolution", {"resolution": "Selesai\x9b"}, officer, "resolution"),
        (f"{unit}/declination", {"reason": "Bukan\x00"}, officer, "reason"),
        (f"/complaints/{cid}/replies", {"message": "Terima\x85kasih"}, reporter, "message"),
        (f"/complaints/{cid}/rating", {"stars": 5, "comment": "Baik\x00"}, reporter, "comment"),
        (f"/complaints/{cid}/reopening", {"reason": "\ud800 belum"}, reporter, "reason"),
    ]
    async with serving(tracker_app(settings)) as tracker:
        for path, body, headers, field in requests:
            r = await tracker.post(
                path,
                content=json.dumps(body).encode(),
                headers={**headers, "content-type": "application/json"},
            )
            assert r.status_code == 422, (path, r.text)
            assert [e["field"] for e in r.json()["errors"]] == [field], (path, r.text)
    async with jetstream(settings) as js:
        assert await read_stream(js, settings.subjects.events_stream) == []


async def test_a_poisoned_event_already_in_the_log_is_projected_and_replayed(settings):
    """As an old log may hold it: NUL and other controls in an event's text, appended by a
    writer that did not check. Every read model stores it (with U+FFFD), and a rebuild from
    the log comes out the same as the live read models."""
    cid = new_tracking_id()
    received = {
        "title": "Jalan\x00rusak parah",
        "body": "Berlubang\x1b[31m di depan pasar",
        "category": "jalan",
        "location": {"address": "Jl.\x00 Merdeka", "kecamatan": "Pontianak\x85Kota"},
    }
    routed = ComplaintRouted(
        opd="dpupr", opd_name="DPUPR", rule="r", reason="r", confidence=0.5, rules_version="t"
    ).model_dump(mode="json") | {"reason": "menyebut 'jalan'\x00", "opd_name": "DPUPR\x7f"}
    async with jetstream(settings) as js:
        store = EventStore(js, settings.subjects)
        last = 0
        for event_type, payload in (("complaint.received", received), ("complaint.routed", routed)):
            last = await store.append(poisoned(cid, event_type, payload), expected_last_seq=last)

    async with serving(tracker_app(settings)) as tracker, serving(analytics_app(settings)):

        async def projected() -> dict | None:
            r = await tracker.get(f"/complaints/{cid}")
            return r.json() if r.status_code == 200 and len(r.json()["history"]) == 2 else None

        page = await eventually(projected)
        assert page["title"] == "Jalan\ufffdrusak parah"
        assert page["history"][1]["note"] == "Proposed: DPUPR\ufffd. menyebut 'jalan'\ufffd"
        await eventually(lambda: every_projection_at(settings, last))

    report = await replay(settings, [], mode="verify", show_progress=False)
    assert sorted(report) == ["analytics.completion", "analytics.facts", "tracker.status"]
    for name, verdict in report.items():
        assert verdict.clean and verdict.differences == [] and not verdict.skipped, name


def poisoned(cid: str, event_type: str, payload: dict[str, Any]) -> Envelope:
    """An envelope around a payload no current writer would produce (an envelope's payload
    is validated only when it is decoded)."""
    return Envelope(
        event_id=uuid.uuid4(),
        type=event_type,
        version=1,
        occurred_at=datetime.now(UTC),
        complaint_id=cid,
        correlation_id=uuid.uuid4(),
        payload=payload,
    )


async def every_projection_at(settings: Settings, seq: int) -> bool:
    conn = await asyncpg.connect(settings.database_url)
    try:
        behind = await conn.fetchval(
            "SELECT count(*) FROM projection_checkpoints WHERE last_seq < $1", seq
        )
        total = await conn.fetchval("SELECT count(*) FROM projection_checkpoints")
    finally:
        await conn.close()
    return total == 3 and behind == 0
