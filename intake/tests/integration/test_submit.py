"""Intake against a real NATS JetStream: what is accepted is in the log, and only that."""

from __future__ import annotations

import contextlib
import hashlib
import re

import nats
import pytest
from pydantic import SecretStr

from lapor.devtools.infra import embedded_nats
from lapor.devtools.testing import serving
from lapor.intake.app import create_app
from lapor.services.bootstrap import bootstrap
from lapor.services.settings import Settings
from lapor.shared.envelope import decode, parse
from lapor.shared.events import ComplaintReceived, ReporterIdentified
from lapor.shared.tracking import PATTERN

COMPLAINT = {
    "title": "Jalan berlubang di Jl. Tanjungpura",
    "body": "Lubang besar di depan pasar sudah dua minggu, membahayakan pengendara motor.",
    "category": "jalan",
    "channel": "mobile_app",
    "location": {"address": "Jl. Tanjungpura", "kecamatan": "Pontianak Selatan"},
    "anonymous": True,
    "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890"},
}


async def stream_messages(settings: Settings, stream: str) -> list[tuple[str, bytes]]:
    """Every message in ``stream``, read straight from the server."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        return [
            ((m := await js.get_msg(stream, seq)).subject, m.data)
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
            if info.state.messages
        ]
    finally:
        await nc.close()


async def test_accepted_complaint_is_in_the_log_without_reporter_identity(settings):
    async with serving(create_app(settings)) as client:
        r = await client.post("/complaints", json=COMPLAINT)
    assert r.status_code == 202, r.text
    tracking_id = r.json()["tracking_id"]
    assert re.match(PATTERN, tracking_id)

    log = await stream_messages(settings, settings.subjects.events_stream)
    assert [s for s, _ in log] == [settings.subjects.complaint(tracking_id, "complaint.received")]
    env = parse(log[0][1])
    event = decode(env)
    assert isinstance(event, ComplaintReceived)
    assert event.title == COMPLAINT["title"] and event.anonymous
    assert b"Siti" not in log[0][1] and b"+62812" not in log[0][1]

    contacts = await stream_messages(settings, settings.subjects.reporters_stream)
    assert len(contacts) == 1
    contact = decode(parse(contacts[0][1]))
    assert isinstance(contact, ReporterIdentified) and contact.name == "Siti Rahmawati"


async def test_correlation_id_travels_from_the_request_into_the_event(settings):
    given = "0b7e6a7e-59a4-4f55-9f7b-3c9e1c2d4a10"
    async with serving(create_app(settings)) as client:
        r = await client.post("/complaints", json=COMPLAINT, headers={"X-Correlation-Id": given})
        fresh = await client.post("/complaints", json=COMPLAINT)
    assert r.status_code == 202 and r.headers["X-Correlation-Id"] == given
    generated = fresh.headers["X-Correlation-Id"]
    assert generated != given
    log = await stream_messages(settings, settings.subjects.events_stream)
    assert [str(parse(data).correlation_id) for _, data in log] == [given, generated]


async def test_same_idempotency_key_twice_appends_one_event(settings):
    headers = {"Idempotency-Key": "retry-test-0001"}
    async with serving(create_app(settings)) as client:
        first = await client.post("/complaints", json=COMPLAINT, headers=headers)
        second = await client.post("/complaints", json=COMPLAINT, headers=headers)
        other = await client.post("/complaints", json=COMPLAINT)
    assert first.status_code == second.status_code == other.status_code == 202
    assert first.json()["tracking_id"] == second.json()["tracking_id"]
    assert other.json()["tracking_id"] != first.json()["tracking_id"]
    assert len(await stream_messages(settings, settings.subjects.events_stream)) == 2
    assert len(await stream_messages(settings, settings.subjects.reporters_stream)) == 2


async def test_idempotency_key_reused_for_another_complaint_is_refused(settings):
    headers = {"Idempotency-Key": "reused-key-0001"}
    changed = {**COMPLAINT, "title": "Sampah menumpuk di TPS"}
    async with serving(create_app(settings)) as client:
        assert (
            await client.post("/complaints", json=COMPLAINT, headers=headers)
        ).status_code == 202
        r = await client.post("/complaints", json=changed, headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "Idempotency-Key", "reason": "already used for a different complaint"}
    ]
    assert len(await stream_messages(settings, settings.subjects.events_stream)) == 1


async def test_tracking_ids_of_a_key_differ_between_deployments(settings):
    """The ID is keyed with the deployment's secret: the README's example key (or any key a
    client logged) does not tell anyone another deployment's ID, nor this one's."""
    headers = {"Idempotency-Key": "3f1c2a9e-demo"}
    other = settings.model_copy(update={"auth_secret": SecretStr("another-deployment")})
    async with serving(create_app(settings)) as ours, serving(create_app(other)) as theirs:
        here = await ours.post("/complaints", json=COMPLAINT, headers=headers)
        again = await ours.post("/complaints", json=COMPLAINT, headers=headers)
        there = await theirs.post("/complaints", json=COMPLAINT, headers=headers)
    assert here.status_code == again.status_code == there.status_code == 202
    assert here.json()["tracking_id"] == again.json()["tracking_id"]
    assert there.json()["tracking_id"] != here.json()["tracking_id"]
    assert len(await stream_messages(settings, settings.subjects.events_stream)) == 2
    nc = await nats.connect(settings.nats_url)
    try:
        stored = await nc.jetstream().get_msg(settings.subjects.events_stream, 1)
    finally:
        await nc.close()
    unkeyed = hashlib.sha256(headers["Idempotency-Key"].encode()).hexdigest()
    assert stored.headers is not None
    assert stored.headers["Lapor-Idempotency-Key"] not in (unkeyed, headers["Idempotency-Key"])


async def test_idempotency_key_without_a_deployment_secret_is_refused(settings):
    unkeyed = settings.model_copy(update={"auth_secret": None})
    async with serving(create_app(unkeyed)) as client:
        r = await client.post(
            "/complaints", json=COMPLAINT, headers={"Idempotency-Key": "no-secret-0001"}
        )
    assert r.status_code == 503
    assert "not configured" in r.json()["detail"]
    assert await stream_messages(settings, settings.subjects.events_stream) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": "abc"}, "title"),
        ({"body": ""}, "body"),
        ({"report_type": "gossip"}, "report_type"),
        ({"category": "Jalan Rusak!"}, "category"),
        ({"location": {"lat": 120, "lon": 109.3}}, "location.lat"),
        ({"reporter": {"email": "not-an-email"}}, "reporter.email"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_invalid_input_names_the_field_and_appends_nothing(settings, change, field):
    async with serving(create_app(settings)) as client:
        r = await client.post("/complaints", json={**COMPLAINT, **change})
    assert r.status_code == 422
    body = r.json()
    assert field in [e["field"] for e in body["errors"]], body
    assert all(e["reason"] for e in body["errors"])
    assert await stream_messages(settings, settings.subjects.events_stream) == []


async def test_nats_unavailable_answers_503_never_202(settings, tmp_path):
    # A server of its own, so that stopping it does not disturb other tests.
    with contextlib.ExitStack() as server:
        url = server.enter_context(embedded_nats(tmp_path / "nats"))
        own = settings.model_copy(update={"nats_url": url, "publish_timeout_seconds": 1.0})
        await bootstrap(own)
        async with serving(create_app(own)) as client:
            assert (await client.post("/complaints", json=COMPLAINT)).status_code == 202
            server.close()  # stops nats-server
            r = await client.post("/complaints", json=COMPLAINT)
    assert r.status_code == 503
    assert "nothing was recorded" in r.json()["detail"]
