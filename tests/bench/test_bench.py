"""The benchmark's own code: the curve's sizes, samples, disk check and table; the log
generator's bytes (the same as the event models would write, with the headers the writers
add); and, on real servers, the lean publisher and the in-process decision paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import curve
import run as bench
from paths import action_costs, route_costs
from workload import EVENTS_PER_COMPLAINT, EventLog

from lapor.services.eventstore import EventStore
from lapor.shared.envelope import decode, parse


def test_sizes_are_read_sorted_and_named() -> None:
    assert curve.parse_sizes("1_000_000,100000, 10M") == [100_000, 1_000_000, 10_000_000]
    assert curve.parse_sizes("50k,20k,50000") == [20_000, 50_000]
    assert [curve.human(n) for n in (20_000, 100_000, 1_000_000, 2_500_000)] == [
        "20k",
        "100k",
        "1M",
        "2.5M",
    ]
    with pytest.raises(ValueError):
        curve.parse_sizes("3")


def test_samples_spread_over_the_whole_log_and_two_phases_do_not_meet() -> None:
    items = list(range(1000))
    early, late = curve.spread(items, 10, 0.25), curve.spread(items, 10, 0.75)
    assert early[0] < 100 and early[-1] >= 900
    assert not set(early) & set(late)
    assert curve.spread(items[:5], 10) == items[:5]


def test_too_small_a_disk_is_refused_with_what_it_needs(tmp_path: Path) -> None:
    found = curve.check_disk(tmp_path, 0, 1000, 1000, 1000, None)
    assert found["needed_bytes"] < found["free_bytes"]
    with pytest.raises(curve.DiskTooSmall, match=r"10,000,000,000-event log.*TMPDIR"):
        curve.check_disk(tmp_path, 100_000, 10**10, 1000, 800, 100_000)


def _curve_report() -> bench.Report:
    report = bench.Report("now", {}, {})
    for size, raw, rate, route in (
        (100_000, 80_000, 20_000, 2.0),
        (1_000_000, 100_000, 50_000, 3.0),
    ):
        at = f"@ {curve.human(size)}"
        report.add(bench.Figure(curve.key("b.ordered", size), f"ordered {at}", raw, "msg/s"))
        target, met = bench.rebuild_target(rate, raw, each=True)
        report.add(
            bench.Figure(
                curve.key("replay.tracker.status", size),
                f"replay: tracker.status {at}",
                rate,
                "ev/s",
                *report.against(curve.key("b.ordered", size)),
                target=target,
                met=met,
            )
        )
        first = curve.key("router.cpu", 100_000)
        report.add(
            bench.Figure(
                curve.key("router.cpu", size),
                f"router: CPU per complaint {at}",
                route,
                "ms",
                *(report.against(first) if size > 100_000 else (None, None)),
                higher_is_better=False,
            )
        )
    report.figures = curve.ordered(report.figures, lambda f: f.key)
    return report


def test_the_curve_table_has_a_row_per_size_under_each_figure() -> None:
    report = _curve_report()
    assert [f.key for f in report.figures] == [
        "b.ordered@100000",
        "b.ordered@1000000",
        "replay.tracker.status@100000",
        "replay.tracker.status@1000000",
        "router.cpu@100000",
        "router.cpu@1000000",
    ]
    lines = bench.table(report).splitlines()
    rebuilt_1m = next(line for line in lines if line.startswith("replay: tracker.status @ 1M"))
    # Beside the raw replay of the same log, and its ratio to it.
    assert "B2 100,000 msg/s" in rebuilt_1m and "0.50x" in rebuilt_1m
    assert rebuilt_1m.rstrip().endswith("yes")
    assert "NO" in next(line for line in lines if line.startswith("replay: tracker.status @ 100k"))
    # A figure set against itself on the smallest log names that log.
    assert "@ 100k 2.0 ms" in next(line for line in lines if "CPU per complaint @ 1M" in line)


def test_the_report_keeps_the_curve_through_its_json(tmp_path: Path) -> None:
    report = _curve_report()
    report.details["curve"] = {"sizes": [100_000, 1_000_000], "points": []}
    bench.write(report, tmp_path / "r.json")
    again = bench.load(tmp_path / "r.json")
    assert again.details["curve"]["sizes"] == [100_000, 1_000_000]
    assert bench.table(again) == bench.table(report)


def test_the_generated_log_is_what_the_event_models_and_writers_write() -> None:
    log = EventLog()
    lives: dict[str, list] = {}
    first_seq = 1000
    for n, (cid, event_type, event_id, data, headers) in enumerate(
        log.complaints(700, first=3, first_seq=first_seq)
    ):
        env = parse(data)
        assert (env.complaint_id, env.type, str(env.event_id)) == (cid, event_type, event_id)
        assert json.dumps(json.loads(data), separators=(",", ":")).encode() == data
        history = lives.setdefault(cid, [])
        history.append((first_seq + n, decode(env), env))
        if log.state.module is not None:  # the state writers put on each event
            snap = log.state.module.fold(history)
            expected = "".join(f"{k}: {v}\r\n" for k, v in log.state.module.headers(snap).items())
            assert headers == expected.encode()
    assert len(lives) == 700
    assert {len(h) for h in lives.values()} == {EVENTS_PER_COMPLAINT}
    assert log.state.module is None or log.state.mode.startswith("stamped")


async def test_the_log_is_appended_fast_and_the_decision_paths_run_on_it(settings) -> None:
    gen, sample = await bench.generate_log(settings, 600, stride=10)
    assert gen.count == 600 and len(sample) == 10
    async with bench._js(settings) as js:
        assert (await js.stream_info(settings.subjects.events_stream)).state.messages == 600
        history = await EventStore(js, settings.subjects).load(sample[3])
    assert [s.envelope.type for s in history][-1] == "complaint.closed"
    assert len(history) == EVENTS_PER_COMPLAINT

    routed = await route_costs(settings, 3, warm_up=0)
    assert routed["calls"] == 3 and sum(routed["decided_by"].values()) == 3
    acted = await action_costs(settings, sample[:3], warm_up=sample[3:4])
    assert acted["calls"] == 3 and not acted["refused"]
