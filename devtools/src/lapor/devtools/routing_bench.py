"""Routing benchmark: how often the routing table picks the unit a person would.

Runs ``RoutingTable.decide`` over a labelled set of complaints (JSON lines of
``{title, body, category, location, expected_opd}``, optionally ``suggested_opd`` and
``excluded``) and prints overall accuracy, accuracy with and without a category, per
unit precision, recall and support, the most frequent confusions, and the speed::

    python -m lapor.devtools.routing_bench [tests/routing/labelled_complaints.jsonl] [--errors]

``--errors`` also lists every misrouted complaint with the rule that fired, ``--json
FILE`` writes the numbers for other tools, and ``--table path/to/routing_table.toml``
measures another table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lapor.router.domain import Decision, RoutingTable
from lapor.shared.events import ComplaintReceived, Location

DEFAULT_PATH = Path("tests/routing/labelled_complaints.jsonl")


@dataclass(frozen=True)
class Labelled:
    """One complaint of the set and the unit it should go to."""

    complaint: ComplaintReceived
    expected: str
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UnitScore:
    unit: str
    precision: float | None
    recall: float | None
    support: int
    predicted: int


@dataclass
class Report:
    total: int = 0
    correct: int = 0
    with_category: tuple[int, int] = (0, 0)
    """(correct, total) of the complaints that came with a category."""
    without_category: tuple[int, int] = (0, 0)
    units: list[UnitScore] = field(default_factory=list)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(expected, chosen) -> how often, for misrouted complaints."""
    rules: Counter[str] = field(default_factory=Counter)
    """Kind of rule that fired ("category", "keyword", ...) -> how often."""
    errors: list[tuple[Labelled, Decision]] = field(default_factory=list)
    microseconds_per_decision: float = 0.0
    rules_version: str = ""

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def unit(self, code: str) -> UnitScore | None:
        return next((u for u in self.units if u.unit == code), None)


def load_labelled(path: Path) -> list[Labelled]:
    """The labelled complaints of a JSON-lines file (blank lines are skipped)."""
    items: list[Labelled] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            location = raw.get("location")
            complaint = ComplaintReceived(
                title=raw["title"],
                body=raw["body"],
                category=raw.get("category"),
                location=Location(**location) if location else None,
                suggested_opd=raw.get("suggested_opd"),
            )
            items.append(
                Labelled(
                    complaint=complaint,
                    expected=raw["expected_opd"],
                    excluded=frozenset(raw.get("excluded", ())),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{number}: {e}") from e
    return items


def evaluate(table: RoutingTable, items: Sequence[Labelled]) -> Report:
    """Route every item and score the decisions against the labels."""
    report = Report(rules_version=table.version)
    decisions = [table.decide(item.complaint, item.excluded) for item in items]
    # Timed on a second pass: in a running router most words' stems are cached.
    started = time.perf_counter()
    for item in items:
        table.decide(item.complaint, item.excluded)
    elapsed = time.perf_counter() - started
    report.microseconds_per_decision = elapsed / len(items) * 1e6 if items else 0.0

    with_category = [0, 0]
    without_category = [0, 0]
    support: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for item, decision in zip(items, decisions, strict=True):
        hit = decision.opd == item.expected
        report.total += 1
        report.correct += hit
        bucket = with_category if item.complaint.category else without_category
        bucket[0] += hit
        bucket[1] += 1
        support[item.expected] += 1
        predicted[decision.opd] += 1
        report.rules[decision.rule.split(":", 1)[0]] += 1
        if hit:
            right[item.expected] += 1
        else:
            report.confusions[(item.expected, decision.opd)] += 1
            report.errors.append((item, decision))
    report.with_category = (with_category[0], with_category[1])
    report.without_category = (without_category[0], without_category[1])
    for unit in [*table.opds, *sorted(set(support) - set(table.opds))]:
        if not support[unit] and not predicted[unit]:
            continue
        report.units.append(
            UnitScore(
                unit=unit,
                precision=right[unit] / predicted[unit] if predicted[unit] else None,
                recall=right[unit] / support[unit] if support[unit] else None,
                support=support[unit],
                predicted=predicted[unit],
            )
        )
    return report


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{value * 100:5.1f}"


def _ratio(pair: tuple[int, int]) -> str:
    correct, total = pair
    share = f"{correct / total * 100:.1f}%" if total else "-"
    return f"{share} ({correct}/{total})"


def format_report(report: Report, *, top: int = 15, errors: bool = False) -> str:
    """The report as a plain-text table."""
    lines = [
        f"Routing benchmark: {report.total} labelled complaints, rules {report.rules_version}",
        "",
        f"Accuracy               {_ratio((report.correct, report.total))}",
        f"  with a category      {_ratio(report.with_category)}",
        f"  without a category   {_ratio(report.without_category)}",
        f"Speed                  {report.microseconds_per_decision:.0f} µs per decision "
        "(stems cached)",
        "Rules that fired       "
        + ", ".join(f"{rule} {n}" for rule, n in report.rules.most_common()),
        "",
        f"{'unit':<24}{'precision':>10}{'recall':>8}{'support':>9}{'chosen':>8}",
    ]
    for u in report.units:
        lines.append(
            f"{u.unit:<24}{_pct(u.precision):>10}{_pct(u.recall):>8}{u.support:>9}{u.predicted:>8}"
        )
    lines += ["", f"Top confusions (expected -> chosen), {sum(report.confusions.values())} in all:"]
    if not report.confusions:
        lines.append("  none")
    for (expected, chosen), n in report.confusions.most_common(top):
        lines.append(f"  {n:>3}  {expected} -> {chosen}")
    if errors:
        lines += ["", "Misrouted:"]
        for item, decision in report.errors:
            c = item.complaint
            lines.append(
                f"  [{item.expected} -> {decision.opd}] {decision.rule} "
                f"(category {c.category}) {c.title!r}"
            )
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, object]:
    """The report's numbers as plain data."""
    return {
        "benchmark": "routing",
        "rules_version": report.rules_version,
        "total": report.total,
        "accuracy": report.accuracy,
        "with_category": list(report.with_category),
        "without_category": list(report.without_category),
        "microseconds_per_decision": report.microseconds_per_decision,
        "units": [u.__dict__ for u in report.units],
        "confusions": [
            {"expected": e, "chosen": c, "count": n}
            for (e, c), n in report.confusions.most_common()
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lapor.devtools.routing_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--table", type=Path, default=None, help="a routing table to measure")
    parser.add_argument("--errors", action="store_true", help="list every misrouted complaint")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path}: no such file (run from the repository root or give a path)")
    table = RoutingTable.load(args.table)
    report = evaluate(table, load_labelled(args.path))
    print(format_report(report, errors=args.errors))
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(report), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
