"""The routing benchmark: its figures, computed right, and floors under what the shipped
model does on the frozen test part of the corpus (tests/routing/corpus/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lapor.devtools.routing_bench import (
    as_read,
    evaluate,
    learning_curve,
    main,
    reliability,
)
from lapor.router import corpus
from lapor.router.corpus import Item, complaint_of
from lapor.router.domain import Decision, RoutingTable
from lapor.router.model import shipped_model
from lapor.router.routing import Router

TEST_PART = Path(__file__).resolve().parents[3] / "tests/routing/corpus/test.jsonl"


def item(body: str, expected: str, also: tuple[str, ...] = ()) -> Item:
    raw = {"title": "", "body": body, "expected_opd": expected}
    return Item(
        "x", "pontianak", complaint_of(raw), expected, frozenset(also), frozenset(), len(body)
    )


def decision(opd: str, confidence: float, rule: str = "model") -> Decision:
    return Decision(
        opd=opd, opd_name=opd, rule=rule, reason="-", confidence=confidence, rules_version="1"
    )


def test_the_figures_of_a_report() -> None:
    cases = [
        (item("lampu jalan mati", "dishub"), decision("dishub", 0.95)),  # right, auto
        (item("sampah numpuk di tps " * 10, "dlh"), decision("dlh", 0.5)),  # right, long
        (item("air pdam mati", "pdam"), decision("pln", 0.92)),  # wrong, auto
        (item("tolong bantu", "dinsos"), decision("diskominfo", 0.0, "fallback")),  # no proposal
        (item("banjir rob masuk rumah", "bpbd", also=("dpupr",)), decision("dpupr", 0.6)),
    ]
    answers = {id(i.complaint): d for i, d in cases}
    items = [i for i, _ in cases]
    report = evaluate("fake", lambda c: answers[id(c)], items, 0.9)
    assert (report.right, report.total) == (3, 5)
    assert report.coordinator == 1
    assert (report.auto, report.auto_right) == (2, 1)
    assert report.by_length["under 150 chars"] == [2, 4]
    assert report.by_length["150-400 chars"] == [1, 1]
    assert report.confusions[("pdam", "pln")] == 1
    figures = report.as_json()
    assert figures["auto_disposed_share"] == 0.4 and figures["auto_disposed_precision"] == 0.5
    assert figures["units"]["pdam"] == {"support": 1, "chosen": 0, "recall": 0.0, "precision": None}


def test_reliability_and_expected_calibration_error() -> None:
    # Ten decisions saying 0.95, nine right; ten saying 0.55, five right.
    pairs = [(0.95, i < 9) for i in range(10)] + [(0.55, i < 5) for i in range(10)]
    table, ece = reliability(pairs)
    assert [(b["n"], b["confidence"], b["right"]) for b in table] == [
        (10, 0.55, 0.5),
        (10, 0.95, 0.9),
    ]
    assert ece == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    [last] = reliability([(1.0, True)])[0]
    assert last["to"] == 1.0  # a certainty lands in the last bin


def test_text_only_reading_drops_category_place_and_suggestion() -> None:
    raw = {
        "title": "Jalan",
        "body": "Jalan rusak parah",
        "category": "jalan",
        "location": {"kelurahan": "Mariana"},
        "suggested_opd": "dpupr",
        "expected_opd": "dpupr",
    }
    full = Item("x", "pontianak", complaint_of(raw), "dpupr", frozenset(), frozenset(), 20)
    bare = as_read(full, text_only=True).complaint
    assert (bare.category, bare.location, bare.suggested_opd) == (None, None, None)
    assert as_read(full, text_only=False) is full


def test_the_learning_curve_counts_proposals_before_their_labels_are_learned() -> None:
    table = RoutingTable.load()
    items = [as_read(i, True) for i in corpus.development()[:120]]
    curve = learning_curve(
        items, table, shipped_model(), corpus.examples(corpus.development()[:60])
    )
    assert set(curve) == {"first 100", "all 120"}
    assert 0.0 < curve["first 100"] <= 1.0


@pytest.fixture(scope="module")
def held_out() -> dict[str, object]:
    table, model = RoutingTable.load(), shipped_model()
    items = [as_read(i, True) for i in corpus.load(TEST_PART) if i.deployment == "pontianak"]
    report = evaluate("shipped", Router(table, model).decide, items, 0.9)
    return report.as_json()


def test_the_shipped_model_on_the_frozen_test_part(held_out) -> None:
    # Floors a little under what `make bench` measured when the model was shipped
    # (text only): a regression of the model or the rules fails here.
    assert held_out["accuracy"] >= 0.85
    assert held_out["coordinator_share"] <= 0.02  # sent on with no proposal


def test_confidence_means_what_it_says_on_complaints_never_trained_on(held_out) -> None:
    assert held_out["ece"] <= 0.08
    assert held_out["auto_disposed_share"] >= 0.5
    assert held_out["auto_disposed_precision"] >= 0.9
    for row in held_out["reliability"]:
        if row["n"] >= 30:
            assert abs(row["confidence"] - row["right"]) <= 0.15, row


def test_the_command_prints_and_writes_its_figures(tmp_path: Path, capsys) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(TEST_PART.read_text("utf-8").splitlines()[:30]) + "\n")
    out = tmp_path / "bench.json"
    assert main(["--test", str(sample), "--json", str(out), "--no-curve"]) == 0
    printed = capsys.readouterr().out
    assert "rules and model, text only" in printed and "rules alone, as written" in printed
    figures = json.loads(out.read_text())
    assert len(figures["reports"]) >= 4
    assert figures["model_version"] == shipped_model().version
