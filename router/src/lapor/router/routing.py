"""The routing decision: the rules and the learned model, weighed together.

``Router(table, model).decide(complaint, exclude, referred)`` is a pure function of the
complaint, the rules, the model and the officers' declines: no I/O, callable in-process
(the benchmark and the training do). Each unit gets a score:

    log P_model(unit | text)
    + weights.keyword   x the unit's keyword hits          (the rules' keyword evidence)
    + weights.category  if the unit owns the chosen category
    + weights.suggested if the reporter suggested the unit
    + weights.referred  if a declining officer named the unit as authorized

The best unit that did not decline wins; its softmax share, mapped through the model's
calibration table, is the decision's confidence: the probability, measured on complaints
the model never saw, that the unit is right. The tracker disposes automatically only above
``LAPOR_AUTO_DISPOSE_CONFIDENCE``.

The decision stays explainable: ``rule`` names the strongest rule that agrees with the
winner (``category:…``, ``keyword:…``, ``referred:…``) or ``model`` when only the model
speaks for it; ``candidates`` holds the model's top three with their probabilities; and the
versions of the rules and of the model are recorded. Without a model the rules decide alone
(``RoutingTable.decide``), as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from lapor.router.domain import Candidate, Decision, RoutingTable
from lapor.router.model import KECAMATAN, TextModel, Weights, top
from lapor.router.text import normalize
from lapor.router.unit_rules import UnitRules
from lapor.shared.events import ComplaintReceived

FLOOR = 1e-4
"""The least probability a unit is given, so that rule evidence can still lift a unit the
model has never seen complaints of."""


@dataclass(frozen=True)
class Evidence:
    """What the rules say about a complaint, unit by unit."""

    category_owner: str | None = None
    category_rule: str | None = None
    keyword_hits: Mapping[str, float] = field(default_factory=dict)
    first_keyword: Mapping[str, str] = field(default_factory=dict)
    suggested: str | None = None
    referred: tuple[str, ...] = ()
    office: str | None = None
    """The sub-district office of the complaint's place, if it is known."""


def gather(
    table: RoutingTable, complaint: ComplaintReceived, referred: tuple[str, ...] = ()
) -> Evidence:
    """The rules' evidence about ``complaint`` under ``table``."""
    owner = table.category_owner(complaint)
    candidates = table.keyword_candidates(complaint)
    office = table.office_for(complaint.location, f"{complaint.title}\n{complaint.body}")
    return Evidence(
        category_owner=owner[0].code if owner else None,
        category_rule=owner[1] if owner else None,
        keyword_hits={unit.code: hits for unit, _, hits in candidates},
        first_keyword={unit.code: keyword for unit, keyword, _ in candidates},
        suggested=complaint.suggested_opd,
        referred=tuple(code for code in referred if code in table.opds),
        office=office.code if office else None,
    )


def scores(
    probabilities: Mapping[str, float],
    evidence: Evidence,
    weights: Weights,
    units: Mapping[str, UnitRules],
    exclude: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Each eligible unit's score (see the module's docstring); excluded units and classes
    this deployment has no unit for are left out."""
    out: dict[str, float] = {}
    for label, p in probabilities.items():
        unit = evidence.office if label == KECAMATAN else label
        if unit is not None and unit in units and unit not in exclude:
            out[unit] = max(out.get(unit, -math.inf), math.log(max(p, FLOOR)))
    floor = math.log(FLOOR)

    def add(unit: str | None, amount: float) -> None:
        if unit is not None and unit in units and unit not in exclude:
            out[unit] = out.get(unit, floor) + amount

    for unit, hits in evidence.keyword_hits.items():
        add(unit, weights.keyword * hits)
    add(evidence.category_owner, weights.category)
    add(evidence.suggested, weights.suggested)
    for unit in dict.fromkeys(evidence.referred):
        add(unit, weights.referred)
    return out


def shares(unit_scores: Mapping[str, float]) -> dict[str, float]:
    """Softmax of the scores: each unit's raw share."""
    if not unit_scores:
        return {}
    peak = max(unit_scores.values())
    exp = {unit: math.exp(score - peak) for unit, score in unit_scores.items()}
    total = sum(exp.values())
    return {unit: value / total for unit, value in exp.items()}


def named_unit(table: RoutingTable, reason: str, declining: str) -> str | None:
    """The unit an officer's reason names, by its code or its full name ("ini kewenangan
    Disperkim", "urusan BPJS Kesehatan"), other than the declining unit; None if none does.
    Officers write the unit they mean into the reason as often as they pick it."""
    words = normalize(reason)
    found: list[tuple[int, str]] = []
    for code, unit in table.opds.items():
        if code == declining:
            continue
        for name in {tuple(code.split("_")), normalize(unit.name)}:
            at = _find(words, name)
            if at is not None:
                found.append((at, code))
    return min(found)[1] if found else None


def _find(words: tuple[str, ...], phrase: tuple[str, ...]) -> int | None:
    n = len(phrase)
    return next((i for i in range(len(words) - n + 1) if words[i : i + n] == phrase), None)


class Router:
    """The routing rules in force and, when there is one, the model beside them."""

    def __init__(self, table: RoutingTable, model: TextModel | None = None) -> None:
        self.table = table
        self.model = model

    def decide(
        self,
        complaint: ComplaintReceived,
        exclude: frozenset[str] = frozenset(),
        referred: tuple[str, ...] = (),
    ) -> Decision:
        """Choose the unit authorized to act on ``complaint``; never fails to choose one."""
        if self.model is None:
            return self.table.decide(complaint, exclude, referred)
        model = self.model
        probabilities = model.probabilities(f"{complaint.title}\n{complaint.body}")
        candidates = tuple(Candidate(label, round(p, 4)) for label, p in top(probabilities))
        evidence = gather(self.table, complaint, referred)
        ranked = shares(scores(probabilities, evidence, model.weights, self.table.opds, exclude))
        stamp = {"candidates": candidates, "model_version": model.version}
        if not ranked:
            return _with(self.table.decide(complaint, exclude), stamp)
        if exclude and not evidence.referred:
            # Declined by the unit the rules hold authorized, and nobody named another: the
            # table's escalation chain (up a level) is the rule, as without a model.
            by_rules = self.table.decide(complaint, exclude)
            if by_rules.rule.startswith("escalation:"):
                return _with(by_rules, stamp)
        unit, share = max(ranked.items(), key=lambda kv: (kv[1], kv[0] == evidence.category_owner))
        opd = self.table.opds[unit]
        rule, because = self._explain(opd, evidence, probabilities)
        decision = self.table.decision(opd, rule, because, model.calibration(share), exclude)
        return _with(decision, stamp)

    def _explain(
        self, opd: UnitRules, evidence: Evidence, probabilities: Mapping[str, float]
    ) -> tuple[str, str]:
        label = KECAMATAN if opd.level == "subdistrict" else opd.code
        model_says = f"The text classifier gives {opd.name} {probabilities.get(label, 0.0):.0%}."
        if opd.code == evidence.category_owner and evidence.category_rule:
            return (
                evidence.category_rule,
                f"The category chosen is handled by {opd.name}. {model_says}",
            )
        if opd.code in evidence.referred:
            return (
                f"referred:{opd.code}",
                f"An officer who declined it named {opd.name} as authorized. {model_says}",
            )
        keyword = evidence.first_keyword.get(opd.code)
        if keyword is not None:
            where = (
                f", a neighbourhood matter of kecamatan {opd.kecamatan},"
                if opd.level == "subdistrict" and opd.kecamatan
                else ","
            )
            return (
                f"keyword:{keyword}",
                f"The complaint mentions '{keyword}'{where} which {opd.name} handles. {model_says}",
            )
        if opd.level == "subdistrict" and opd.kecamatan:
            return "model", f"{model_says} A neighbourhood matter of kecamatan {opd.kecamatan}."
        return "model", model_says


def _with(decision: Decision, stamp: Mapping[str, object]) -> Decision:
    from dataclasses import replace

    return replace(decision, **stamp)
