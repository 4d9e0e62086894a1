"""The operator's commands for a stopped read model: where each one is, the event it
stopped in front of (shown escaped), and the recorded decision to skip it (real JetStream
and PostgreSQL, through the ``lapor projections`` command's own code)."""

from __future__ import annotations

import argparse

import nats

from lapor.devtools.testing import eventually, serving
from lapor.ops.commands.projections import run_projections
from lapor.tracker.app import create_app as tracker_app

POISON = b'{"not": "an event \x1b]0;pwned\x07 \x1b[2J"}'


async def projections(settings, capsys, command: str, **extra) -> tuple[int, str]:
    args = argparse.Namespace(projections_command=command, **extra)
    code = await run_projections(settings, args)
    return code, capsys.readouterr().out


async def test_status_show_and_skip_a_stopped_read_model(settings, capsys):
    nc = await nats.connect(settings.nats_url)
    subject = settings.subjects.complaint("P0IS0-N0000", "complaint.received")
    await nc.jetstream().publish(subject, POISON, stream=settings.subjects.events_stream)
    await nc.close()
    async with serving(tracker_app(settings)) as tracker:

        async def stopped():
            return (await tracker.get("/health/ready")).json()["status"] == "degraded"

        await eventually(stopped)
        metrics = (await tracker.get("/health/metrics")).text
        at = 'projection="tracker.status",service="tracker"'
        assert f"lapor_projection_stopped{{{at}}} 1.0" in metrics
        assert f"lapor_projection_stopped_at_seq{{{at}}} 1.0" in metrics

        code, out = await projections(settings, capsys, "status")
        assert code == 1
        assert "tracker.status: at 0 of 1, STOPPED in front of seq 1" in out

        code, out = await projections(settings, capsys, "show", projection="tracker.status")
        assert code == 0 and "seq 1" in out and "an event" in out
        assert "\x1b" not in out and "\x07" not in out  # nothing reaches the terminal raw
        assert "\\x1b]0;pwned" in out  # shown as an escape

        code, out = await projections(
            settings, capsys, "skip", projection="tracker.status", seq=2, reason="x", by="ops"
        )
        assert code == 2 and "only the event it stopped at" in out
        code, out = await projections(
            settings,
            capsys,
            "skip",
            projection="tracker.status",
            seq=1,
            reason="garbage",
            by="Rina",
        )
        assert code == 0 and "skipped by decision of Rina" in out

        async def following():
            return (await tracker.get("/health/ready")).json()["status"] == "ready"

        await eventually(following, within=30)
        metrics = (await tracker.get("/health/metrics")).text
        assert f"lapor_projection_stopped{{{at}}} 0.0" in metrics
        assert f"lapor_projection_checkpoint{{{at}}} 1.0" in metrics
        code, out = await projections(settings, capsys, "status")
        assert code == 0 and "tracker.status: at 1 of 1, following" in out
