"""Routing benchmark: how often the router picks the unit a person would, how sure it
may be, and how fast it learns.

On the test part of the project's corpus (``tests/routing/corpus/test.jsonl``, frozen
before any tuning: see its README), for the rules alone and for the rules with the
shipped model, each twice: text only (no category, no location, as most complaints
arrive) and as written (with the category and place the citizen gave):

- top-1 accuracy overall, by text length, and per unit (precision and recall);
- the share sent to the coordinator with no proposal at all (rule ``fallback``), the
  share disposed automatically
  at ``LAPOR_AUTO_DISPOSE_CONFIDENCE`` and how many of those were right;
- calibration: a reliability table and the expected calibration error;
- decision time p50 and p99.

Then the learning curve: the test complaints fed in order to a new deployment that starts
from the shipped model; each proposal is decided by the admin (accepted, or corrected when
wrong), which is a label; the model is refitted every ``REFIT_EVERY`` complaints; accuracy
of the proposals over the first 100, 500, 1,000 and all.

    python -m lapor.devtools.routing_bench [--test FILE] [--json FILE] [--errors] [--no-curve]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lapor.router import corpus
from lapor.router.corpus import Item
from lapor.router.domain import Decision, RoutingTable
from lapor.router.model import TextModel, shipped_model
from lapor.router.routing import Router
from lapor.router.training import Example, refit
from lapor.services.settings import Settings

DEFAULT_TEST = Path("tests/routing/corpus/test.jsonl")
DEPLOYMENTS = {"pontianak": "kota_pontianak", "kubu_raya": "kabupaten_kubu_raya"}
"""The corpus's ``deployment`` field -> the packaged deployment its complaints go to."""
LENGTHS = ((0, 150, "under 150 chars"), (150, 400, "150-400 chars"), (400, 10**9, "over 400"))
BINS = 10
REFIT_EVERY = 100
CURVE_POINTS = (100, 500, 1000)
TARGETS = {"top1_text_only": 0.85, "auto_disposed_share": 0.5, "auto_disposed_precision": 0.95,
           "p99_ms": 5.0}  # fmt: skip


@dataclass
class Report:
    """One router on one set, one way of reading it."""

    name: str
    total: int = 0
    right: int = 0
    coordinator: int = 0
    auto: int = 0
    auto_right: int = 0
    by_length: dict[str, list[int]] = field(default_factory=dict)
    support: Counter[str] = field(default_factory=Counter)
    chosen: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    reliability: list[dict[str, float]] = field(default_factory=list)
    ece: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: list[tuple[Item, Decision]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def as_json(self) -> dict[str, object]:
        units = sorted(set(self.support) | set(self.chosen))
        return {
            "name": self.name,
            "total": self.total,
            "accuracy": round(self.accuracy, 4),
            "coordinator_share": round(self.coordinator / self.total, 4) if self.total else 0,
            "auto_disposed_share": round(self.auto / self.total, 4) if self.total else 0,
            "auto_disposed_precision": round(self.auto_right / self.auto, 4) if self.auto else None,
            "by_length": {k: {"right": v[0], "total": v[1]} for k, v in self.by_length.items()},
            "units": {
                u: {
                    "support": self.support[u],
                    "chosen": self.chosen[u],
                    "recall": round(self.hits[u] / self.support[u], 4) if self.support[u] else None,
                    "precision": round(self.hits[u] / self.chosen[u], 4)
                    if self.chosen[u]
                    else None,
                }
                for u in units
            },
            "reliability": self.reliability,
            "ece": round(self.ece, 4),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
        }


def as_read(item: Item, text_only: bool) -> Item:
    """The item with its category, place and suggestion removed when read as text only."""
    if not text_only:
        return item
    bare = item.complaint.model_copy(
        update={"category": None, "location": None, "suggested_opd": None}
    )
    return Item(
        item.id, item.deployment, bare, item.expected, item.also_right, item.style, item.chars
    )


def evaluate(
    name: str,
    decide: Callable[..., Decision],
    items: Sequence[Item],
    threshold: float,
) -> Report:
    report = Report(name=name, by_length={label: [0, 0] for *_, label in LENGTHS})
    timings: list[float] = []
    confidences: list[tuple[float, bool]] = []
    for item in items:
        decide(item.complaint)  # warm the stem cache, as a running router has it
        started = time.perf_counter()
        decision = decide(item.complaint)
        timings.append((time.perf_counter() - started) * 1000)
        ok = item.right(decision.opd)
        report.total += 1
        report.right += ok
        report.support[item.expected] += 1
        report.chosen[decision.opd] += 1
        report.hits[item.expected] += ok and decision.opd == item.expected
        report.coordinator += decision.rule == "fallback"
        if decision.confidence >= threshold:
            report.auto += 1
            report.auto_right += ok
        label = next(label for low, high, label in LENGTHS if low <= item.chars < high)
        report.by_length[label][0] += ok
        report.by_length[label][1] += 1
        confidences.append((decision.confidence, ok))
        if not ok:
            report.confusions[(item.expected, decision.opd)] += 1
            report.errors.append((item, decision))
    report.reliability, report.ece = reliability(confidences)
    ordered = sorted(timings)
    report.p50_ms = statistics.median(ordered) if ordered else 0.0
    report.p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return report


def reliability(
    pairs: Sequence[tuple[float, bool]], bins: int = BINS
) -> tuple[list[dict[str, float]], float]:
    """Per confidence bin: how many decisions, their mean confidence, and how many were
    right; and the expected calibration error (the bins' gaps weighted by their size)."""
    table, ece = [], 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if low <= c < high or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        mean = sum(c for c, _ in inside) / len(inside)
        right = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(pairs) * abs(mean - right)
        table.append({"from": low, "to": high, "n": len(inside), "confidence": round(mean, 4),
                      "right": round(right, 4)})  # fmt: skip
    return table, ece


def learning_curve(
    items: Sequence[Item], table: RoutingTable, start: TextModel, development: Sequence[Example]
) -> dict[str, float]:
    """Accuracy of the proposals a new deployment makes while its admin decides each one."""
    router = Router(table, start)
    labels: list[Example] = []
    right = 0
    curve: dict[str, float] = {}
    for n, item in enumerate(items, 1):
        decision = router.decide(item.complaint)
        right += item.right(decision.opd)
        unit = decision.opd if item.right(decision.opd) else item.expected
        source = "accepted" if unit == decision.opd else "corrected"
        labels.append(Example(complaint=item.complaint, unit=unit, weight=2.0, source=source))
        if n in CURVE_POINTS:
            curve[f"first {n}"] = round(right / n, 4)
        if n % REFIT_EVERY == 0:
            router = Router(table, refit([*development, *labels], start))
    curve[f"all {len(items)}"] = round(right / len(items), 4) if items else 0.0
    return curve


def format_report(r: Report, threshold: float, top: int = 8) -> str:
    share = lambda n: f"{n / r.total * 100:5.1f}%" if r.total else "    -"  # noqa: E731
    auto = f"{r.auto_right / r.auto * 100:.1f}% right" if r.auto else "none"
    lines = [
        f"{r.name}: {r.total} complaints",
        f"  top-1 accuracy        {share(r.right)} ({r.right}/{r.total})",
        "  by length             "
        + ", ".join(
            f"{k} {v[0] / v[1] * 100:.0f}% ({v[1]})" for k, v in r.by_length.items() if v[1]
        ),
        f"  no proposal (to the coordinator by hand) {share(r.coordinator)}",
        f"  auto-disposed (>= {threshold:.2f}) {share(r.auto)}, {auto}",
        f"  calibration error     {r.ece:.3f}",
        f"  decision time         p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms",
        "  reliability           "
        + "  ".join(
            f"[{b['from']:.1f},{b['to']:.1f}) n={b['n']} "
            f"said {b['confidence']:.2f} was {b['right']:.2f}"
            for b in r.reliability
        ),
        "  top confusions        "
        + ", ".join(f"{e}->{c} {n}" for (e, c), n in r.confusions.most_common(top)),
    ]
    return "\n".join(lines)


def units_table(r: Report) -> str:
    lines = [f"{'unit':<24}{'recall':>8}{'precision':>11}{'support':>9}{'chosen':>8}"]
    for unit in sorted(set(r.support) | set(r.chosen)):
        recall = f"{r.hits[unit] / r.support[unit] * 100:.0f}%" if r.support[unit] else "-"
        precision = f"{r.hits[unit] / r.chosen[unit] * 100:.0f}%" if r.chosen[unit] else "-"
        lines.append(f"{unit:<24}{recall:>8}{precision:>11}{r.support[unit]:>9}{r.chosen[unit]:>8}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lapor.devtools.routing_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help="the labelled set")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--errors", action="store_true", help="list the misrouted complaints")
    parser.add_argument("--no-curve", action="store_true", help="skip the learning curve")
    args = parser.parse_args(argv)
    if not args.test.exists():
        parser.error(f"{args.test}: no such file (run from the repository root or give a path)")
    threshold = Settings().auto_dispose_confidence
    model = shipped_model()
    everything = corpus.load(args.test)
    tables = {place: RoutingTable.load(deployment=name) for place, name in DEPLOYMENTS.items()}
    table = tables["pontianak"]
    items = [i for i in everything if i.deployment == "pontianak"]
    print(
        f"Routing benchmark: test part, {len(items)} complaints of Kota Pontianak and "
        f"{len(everything) - len(items)} of Kabupaten Kubu Raya; rules {table.version}, "
        f"model {model.version}\n"
    )
    results: dict[str, object] = {"benchmark": "routing", "rules_version": table.version,
                                  "model_version": model.version, "threshold": threshold,
                                  "targets": TARGETS, "reports": []}  # fmt: skip
    reports = []
    for place, table_of_place in tables.items():
        chosen = [i for i in everything if i.deployment == place]
        if not chosen:
            continue
        routers = {
            "rules alone": table_of_place.decide,
            "rules and model": Router(table_of_place, model).decide,
        }
        for text_only in (True, False):
            read = [as_read(i, text_only) for i in chosen]
            for name, decide in routers.items():
                way = "text only" if text_only else "as written"
                where = "" if place == "pontianak" else f" ({DEPLOYMENTS[place]})"
                report = evaluate(f"{name}, {way}{where}", decide, read, threshold)
                reports.append(report)
                print(format_report(report, threshold) + "\n")
                results["reports"].append(report.as_json())  # type: ignore[attr-defined]
    best = reports[1]
    print("Per unit, rules and model, text only:\n" + units_table(best) + "\n")
    if args.errors:
        for item, decision in best.errors:
            print(
                f"  [{item.expected} -> {decision.opd}] {decision.rule} "
                f"{decision.confidence:.2f} {item.complaint.title!r}"
            )
    if not args.no_curve:
        development = corpus.examples(corpus.development())
        started = time.perf_counter()
        curve = learning_curve([as_read(i, True) for i in items], table, model, development)
        print(f"Learning curve (text only, refit every {REFIT_EVERY}, "
              f"{time.perf_counter() - started:.0f} s): "
              + ", ".join(f"{k}: {v * 100:.1f}%" for k, v in curve.items()))  # fmt: skip
        results["learning_curve"] = curve
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
