"""GET /metrics on real JetStream and PostgreSQL: live from the read model, and as of a
past instant from the log itself (the known history of ../conftest.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import nats
import pytest

from lapor.analytics.app import create_app
from lapor.devtools.testing import eventually, serving
from lapor.services.eventstore import EventStore
from lapor.shared.envelope import envelope
from lapor.shared.events import ComplaintRated

C = "CCCCC-0000C"


def wib(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=timezone(timedelta(hours=7)))


# A stream timestamp is the server's clock: leave room on both sides of a recorded instant.
GAP = 0.05


async def append(settings, history, after: dict[str, int] | None = None) -> int:
    """Append ``history`` ((complaint id, event, occurred_at) in order) to complaints whose
    last sequences are ``after``; returns the last sequence."""
    nc = await nats.connect(settings.nats_url)
    store = EventStore(nc.jetstream(), settings.subjects)
    last: dict[str, int] = dict(after or {})
    seq = 0
    try:
        for cid, event, at in history:
            env = envelope(event, complaint_id=cid, correlation_id=uuid.uuid4(), occurred_at=at)
            seq = last[cid] = await store.append(env, expected_last_seq=last.get(cid, 0))
    finally:
        await nc.close()
    return seq


async def caught_up(client, seq: int) -> dict:
    async def probe():
        body = (await client.get("/metrics")).json()
        return body if body["log_sequence"] == seq else None

    return await eventually(probe)


def figures(body: dict) -> dict:
    """What must not depend on how or when the figures were computed."""
    return {"overall": body["overall"], "groups": body["groups"]}


def counts(group: dict) -> tuple:
    return (group["received"], group["finished"], group["completion_rate"])


@pytest.fixture
async def recorded(settings, batches):
    """The two batches appended with an instant recorded between them: (mid, end, last seq)."""
    first, second = batches
    await append(settings, first)
    await asyncio.sleep(GAP)
    mid = datetime.now(UTC)
    await asyncio.sleep(GAP)
    last = await append(settings, second)
    await asyncio.sleep(GAP)
    end = datetime.now(UTC)
    await asyncio.sleep(GAP)
    return mid, end, last


async def test_live_figures_by_opd_and_month(settings, recorded):
    *_, last = recorded
    async with serving(create_app(settings)) as client:
        body = await caught_up(client, last)
        assert body["source"] == "read_model" and body["as_of"] is None
        overall = body["overall"]
        assert counts(overall) == (4, 2, "50.00")
        assert overall["archived"] == 1
        assert overall["follow_up_due"] == 4 and overall["followed_up_within_deadline"] == 2
        assert overall["followed_up_within_deadline_rate"] == "50.00"
        assert overall["working_days_to_disposition"] == {"count": 4, "median": 1, "p90": 2}
        assert overall["working_days_to_first_follow_up"] == {"count": 3, "median": 3, "p90": 8}
        assert overall["working_days_to_finish"] == {"count": 2, "median": 5, "p90": 6}
        assert (overall["breaches"], overall["hops"], overall["hops_per_complaint"]) == (
            1,
            1,
            "0.25",
        )
        assert overall["ratings"] == {
            "count": 2,
            "mean": "4.00",
            "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1},
        }
        assert body["reckoning"] == {
            "timezone": "Asia/Pontianak",
            "collective_leave_days": 0,
            "first_follow_up_days": 5,
            "percentile": "nearest-rank",
        }

        by_opd = (await client.get("/metrics", params={"by": "opd"})).json()
        assert [(g["key"], g["name"], *counts(g)) for g in by_opd["groups"]] == [
            ("dlh", "Dinas Lingkungan Hidup", 2, 1, "50.00"),
            ("dpupr", "Dinas PUPR", 2, 1, "50.00"),
            (None, None, 0, 0, None),
        ]
        by_month = (await client.get("/metrics", params={"by": "month"})).json()
        assert [(g["key"], *counts(g), g["archived"]) for g in by_month["groups"]] == [
            ("2024-03", 2, 1, "50.00", 0),
            ("2024-04", 2, 1, "50.00", 1),
        ]
        march_dlh = (
            await client.get(
                "/metrics", params={"opd": "dlh", "from": "2024-03-01", "to": "2024-03-31"}
            )
        ).json()
        assert (march_dlh["opd"], march_dlh["from"], march_dlh["to"]) == (
            "dlh",
            "2024-03-01",
            "2024-03-31",
        )
        assert counts(march_dlh["overall"]) == (1, 0, "0.00")  # B only

        # The completion report keeps its shape and agrees.
        completion = (await client.get("/metrics/completion")).json()
        assert completion["overall"] == {"received": 4, "resolved": 2, "completion_rate": "50.00"}


async def test_as_of_a_past_instant_counts_what_the_log_held_then(settings, recorded):
    mid, end, last = recorded
    async with serving(create_app(settings)) as client:
        live = await caught_up(client, last)

        then = await client.get("/metrics", params={"as_of": mid.isoformat(), "by": "opd"})
        assert then.status_code == 200, then.text
        body = then.json()
        assert body["source"] == "log"
        assert datetime.fromisoformat(body["as_of"]) == mid
        assert body["log_sequence"] == 14  # the first batch
        assert counts(body["overall"]) == (2, 1, "50.00")  # A and B
        assert body["overall"]["archived"] == 0
        assert body["overall"]["followed_up_within_deadline"] == 1
        assert body["overall"]["hops"] == 1 and body["overall"]["breaches"] == 1
        assert [(g["key"], *counts(g)) for g in body["groups"]] == [
            ("dlh", 1, 0, "0.00"),
            ("dpupr", 1, 1, "100.00"),
        ]

        # As of the end, the log gives what the read model gives.
        at_end = (await client.get("/metrics", params={"as_of": end.isoformat()})).json()
        assert at_end["log_sequence"] == last == live["log_sequence"]
        assert figures(at_end) == figures(live)
        for by in ("opd", "month", "channel", "category"):
            logged = await client.get("/metrics", params={"as_of": end.isoformat(), "by": by})
            read = await client.get("/metrics", params={"by": by})
            assert figures(logged.json()) == figures(read.json()), by

        # Asked again after more appends to the log (one backdated into the first batch's
        # time), the answer is the same, to the byte.
        late = [(C, ComplaintRated(stars=1), wib(3, 1)), (C, ComplaintRated(stars=2), wib(4, 9))]
        await append(settings, late, after={C: last})
        await caught_up(client, last + 2)
        again = await client.get("/metrics", params={"as_of": mid.isoformat(), "by": "opd"})
        assert again.content == then.content

        # Before the first event: nothing.
        before = (
            await client.get("/metrics", params={"as_of": (mid - timedelta(days=1)).isoformat()})
        ).json()
        assert (before["log_sequence"], before["overall"]["received"]) == (0, 0)

        # The short-lived consumers that read the log are gone; only the durables remain.
        nc = await nats.connect(settings.nats_url)
        try:
            infos = await nc.jetstream().consumers_info(settings.subjects.events_stream)
        finally:
            await nc.close()
        assert sorted(i.name for i in infos) == ["analytics_completion", "analytics_facts"]


async def test_as_of_must_be_a_past_instant_with_an_offset(settings):
    async with serving(create_app(settings)) as client:
        future = datetime.now(UTC) + timedelta(hours=1)
        r = await client.get("/metrics", params={"as_of": future.isoformat()})
        assert r.status_code == 422
        r = await client.get("/metrics", params={"as_of": "2024-03-01T00:00:00"})
        assert r.status_code == 422
        r = await client.get("/metrics", params={"by": "week"})
        assert r.status_code == 422
        empty = await client.get(
            "/metrics", params={"as_of": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
        )
        assert empty.status_code == 200, empty.text
        assert empty.json()["log_sequence"] == 0


async def test_metrics_export_as_csv_and_ndjson_holds_the_figures_of_the_api(settings, recorded):
    *_, last = recorded
    async with serving(create_app(settings)) as client:
        await caught_up(client, last)
        params = {"by": "opd"}
        api = (await client.get("/metrics", params=params)).json()
        csv_response = await client.get("/exports/metrics.csv", params=params)
        ndjson_response = await client.get("/exports/metrics.ndjson", params=params)
        bad = await client.get("/exports/metrics.csv", params={"by": "weekday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "by"
    for r in (csv_response, ndjson_response):
        assert r.status_code == 200
        assert r.headers["Lapor-Log-Sequence"] == str(last) == str(api["log_sequence"])
        assert "attachment" in r.headers["Content-Disposition"]
    assert csv_response.headers["content-type"].startswith("text/csv")

    table = list(csv.DictReader(io.StringIO(csv_response.text)))
    lines = [json.loads(line) for line in ndjson_response.text.splitlines()]
    assert [row["group"] for row in table] == ["*", "dlh", "dpupr", ""]
    assert [row["group"] for row in lines] == ["*", "dlh", "dpupr", None]
    assert list(table[0]) == list(lines[0])  # the same columns, in the same order
    groups = [api["overall"], *api["groups"]]
    for row, line, figures in zip(table, lines, groups, strict=True):
        assert (row["received"], row["finished"]) == tuple(
            str(figures[k]) for k in ("received", "finished")
        )
        assert row["completion_rate"] == (figures["completion_rate"] or "")
        assert line["working_days_to_finish_median"] == figures["working_days_to_finish"]["median"]
        assert line["ratings_distribution_5"] == figures["ratings"]["distribution"]["5"]
    assert table[1]["name"] == "Dinas Lingkungan Hidup"
