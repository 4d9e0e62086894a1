"""Training the routing model: from labelled complaints to a ``TextModel``.

Deterministic for the same examples (in the same order) and seed:

1. five-fold cross-validation gives every example the probabilities of a model that did
   not see it;
2. on those, the rules' weights (``Weights``) are chosen by a small grid search: the
   combination that routes the most examples right;
3. on the same held-out decisions an isotonic regression maps the winner's raw share to
   the frequency with which it was right: the calibration;
4. the model is fitted again on every example.

scikit-learn does the fitting; the router itself needs only NumPy (``lapor.router.model``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lapor.router.domain import RoutingTable
from lapor.router.model import FEATURES_VERSION, Calibration, TextModel, Weights, features, label_of
from lapor.router.routing import Evidence, gather, scores
from lapor.shared.events import ComplaintReceived

C = 20.0
"""Inverse regularisation of the logistic regression (chosen on the development part)."""
FOLDS = 5
OWN_CALIBRATION = 300
"""Labels from the deployment's own log it takes to calibrate on them alone."""
KEYWORD_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
CATEGORY_GRID = (0.0, 1.0, 2.0, 3.0, 5.0)
SUGGESTED_GRID = (0.0, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Example:
    """A complaint and the unit that was authorized to act on it."""

    complaint: ComplaintReceived
    unit: str
    weight: float = 1.0
    source: str = "corpus"
    """Where the label comes from: ``corpus``, or the kind of human decision in the log."""


def train(
    examples: Sequence[Example],
    table: RoutingTable,
    *,
    seed: int = 0,
    about: Mapping[str, object] | None = None,
) -> TextModel:
    """A calibrated model for ``table``'s deployment, trained on ``examples``; ``about``
    is recorded in its ``info`` (and so in its version)."""
    if len({label_of(e.unit) for e in examples}) < 2:
        raise ValueError("training needs examples of at least two units")
    texts = [f"{e.complaint.title}\n{e.complaint.body}" for e in examples]
    labels = [label_of(e.unit) for e in examples]
    weights = np.array([e.weight for e in examples], dtype=np.float64)
    held_out = _cross_validated(texts, labels, weights, seed)
    evidence = [gather(table, e.complaint) for e in examples]
    held = _Held.of(held_out, evidence, examples, table)
    chosen, accuracy = _fit_weights(held)
    own = np.array([e.source != "corpus" for e in examples])
    # Confidence must mean what it says on this deployment's complaints: once the log has
    # labelled enough of them, they alone calibrate it.
    calibration = _calibrate(held, chosen, own if own.sum() >= OWN_CALIBRATION else None)
    fitted = _fit(texts, labels, weights, seed)
    info = {
        "seed": seed,
        "examples": len(examples),
        "sources": dict(sorted(Counter(e.source for e in examples).items())),
        "cross_validated_accuracy": round(accuracy, 4),
        "calibrated_on": "log" if own.sum() >= OWN_CALIBRATION else "all",
        "features_version": FEATURES_VERSION,
        "C": C,
        **(about or {}),
    }
    return _as_stored(TextModel(**fitted, weights=chosen, calibration=calibration, info=info))


def _fit(texts: Sequence[str], labels: Sequence[str], weights: np.ndarray, seed: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=features, sublinear_tf=True, min_df=2, dtype=np.float64)
    matrix = vectorizer.fit_transform(texts)
    classifier = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    classifier.fit(matrix, labels, sample_weight=weights)
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    return {
        "classes": tuple(str(c) for c in classifier.classes_),
        "vocabulary": vocabulary,
        "idf": vectorizer.idf_,
        "coef": classifier.coef_,
        "intercept": classifier.intercept_,
    }


def _cross_validated(
    texts: Sequence[str], labels: Sequence[str], weights: np.ndarray, seed: int
) -> list[dict[str, float]]:
    """Each example's class probabilities from a model trained without it."""
    from sklearn.model_selection import KFold

    out: list[dict[str, float]] = [{} for _ in texts]
    folds = KFold(n_splits=min(FOLDS, len(texts)), shuffle=True, random_state=seed)
    for train_rows, test_rows in folds.split(texts):
        fitted = _fit([texts[i] for i in train_rows], [labels[i] for i in train_rows],
                      weights[train_rows], seed)  # fmt: skip
        model = _as_stored(TextModel(**fitted))
        for i in test_rows:
            out[i] = model.probabilities(texts[i])
    return out


@dataclass(frozen=True)
class _Held:
    """Held-out decisions as matrices (examples x units), so that every candidate set of
    weights is scored at once: the model's log-probabilities (``-inf`` where a unit is
    not a candidate), the rules' evidence, and the index of each example's right unit."""

    base: np.ndarray
    keyword: np.ndarray
    category: np.ndarray
    suggested: np.ndarray
    right: np.ndarray

    @classmethod
    def of(
        cls,
        held_out: Sequence[dict[str, float]],
        evidence: Sequence[Evidence],
        examples: Sequence[Example],
        table: RoutingTable,
    ) -> _Held:
        units = list(table.opds)
        index = {code: i for i, code in enumerate(units)}
        shape = (len(examples), len(units))
        base = np.full(shape, -np.inf)
        keyword, category, suggested = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for row, (probabilities, facts) in enumerate(zip(held_out, evidence, strict=True)):
            # The same candidates and scores as routing.scores, term by term.
            for unit, score in scores(
                probabilities, facts, Weights(0, 0, 0, 0), table.opds
            ).items():
                base[row, index[unit]] = score
            for unit, hits in facts.keyword_hits.items():
                keyword[row, index[unit]] = hits
            if facts.category_owner in index:
                category[row, index[facts.category_owner]] = 1.0
            if facts.suggested in index:
                suggested[row, index[facts.suggested]] = 1.0
        right = np.array([index.get(e.unit, -1) for e in examples])
        return cls(base, keyword, category, suggested, right)

    def decide(self, weights: Weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each example's winning unit, its share, and the share of its right unit."""
        total = (
            self.base
            + weights.keyword * self.keyword
            + weights.category * self.category
            + weights.suggested * self.suggested
        )
        total = total - total.max(axis=1, keepdims=True)
        exp = np.exp(total)
        share = exp / exp.sum(axis=1, keepdims=True)
        winner = share.argmax(axis=1)
        rows = np.arange(len(share))
        right_share = np.where(self.right >= 0, share[rows, np.maximum(self.right, 0)], 0.0)
        return winner, share[rows, winner], right_share


def _fit_weights(held: _Held) -> tuple[Weights, float]:
    """The weights that route the most held-out examples right (then: likeliest)."""
    best: tuple[int, float, Weights] | None = None
    for keyword, category, suggested in itertools.product(
        KEYWORD_GRID, CATEGORY_GRID, SUGGESTED_GRID
    ):
        weights = Weights(keyword=keyword, category=category, suggested=suggested)
        winner, _, right_share = held.decide(weights)
        key = (
            int((winner == held.right).sum()),
            float(np.log(np.maximum(right_share, 1e-6)).sum()),
        )
        if best is None or key > best[:2]:
            best = (*key, weights)
    assert best is not None
    return best[2], best[0] / len(held.right)


def _calibrate(held: _Held, weights: Weights, rows: np.ndarray | None = None) -> Calibration:
    """Isotonic map from the winner's held-out share to how often it was right (on the
    examples ``rows`` selects, by default all)."""
    from sklearn.isotonic import IsotonicRegression

    winner, share, _ = held.decide(weights)
    right = (winner == held.right).astype(np.float64)
    if rows is not None:
        share, right = share[rows], right[rows]
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(share, right)
    return Calibration(
        raw=tuple(round(float(x), 6) for x in isotonic.X_thresholds_),
        right=tuple(round(float(y), 6) for y in isotonic.y_thresholds_),
    )


def refit(examples: Sequence[Example], like: TextModel, *, seed: int = 0) -> TextModel:
    """``like`` fitted again on ``examples``, keeping its rule weights and calibration: the
    quick retraining of a running deployment between two full ``train`` runs."""
    texts = [f"{e.complaint.title}\n{e.complaint.body}" for e in examples]
    labels = [label_of(e.unit) for e in examples]
    weights = np.array([e.weight for e in examples], dtype=np.float64)
    fitted = _fit(texts, labels, weights, seed)
    info = {**like.info, "refit_examples": len(examples),
            "refit_sources": dict(sorted(Counter(e.source for e in examples).items()))}  # fmt: skip
    return _as_stored(
        TextModel(**fitted, weights=like.weights, calibration=like.calibration, info=info)
    )


def _as_stored(model: TextModel) -> TextModel:
    """The model as it will be loaded from its archive (weights kept at half precision), so
    what is measured during training is what routes."""
    return TextModel.from_bytes(model.to_bytes())


def main() -> None:
    """``python -m lapor.router.training``: train the model that ships with the router on
    the development part of the corpus (``make model``)."""
    import hashlib
    from importlib.resources import files

    from lapor.router import corpus
    from lapor.router.model import SHIPPED

    package = files("lapor.router")
    data = package.joinpath("development.jsonl").read_bytes()
    about = {"corpus": "development", "corpus_sha256": hashlib.sha256(data).hexdigest()}
    model = train(corpus.examples(corpus.development()), RoutingTable.load(), about=about)
    target = package.joinpath(SHIPPED)
    with open(str(target), "wb") as out:
        out.write(model.to_bytes())
    print(f"{target}: {model.version} {dict(model.info)}")


if __name__ == "__main__":
    main()
