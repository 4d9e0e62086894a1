"""The learned signal beside the rules: a text classifier's probabilities per unit.

A linear model over tf-idf features of the complaint's title and body: the stems of its
words, pairs of neighbouring stems, and the character 3- to 5-grams of each word (which
survive typos and informal spellings the normaliser does not know). It is trained with
scikit-learn (``lapor.router.training``) and kept as data: a vocabulary, idf weights, a
weight matrix and a calibration table, saved as a NumPy archive that loads without
executing anything (no pickle), so a model fetched from the object store cannot run code.

Inference is here, in plain NumPy, with the very ``features`` function training used:
what the router computes is what was trained and measured.

Labels are unit codes, except the sub-district offices, which are one class,
``KECAMATAN``: which office a neighbourhood matter goes to is a question of place, not of
words, and the rules answer it from the complaint's location.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lapor.router.text import normalize, stem

FEATURES_VERSION = 1
"""Bumped whenever ``features`` changes: a model trained on other features is refused."""

KECAMATAN = "kecamatan"
"""The class of every sub-district office: neighbourhood matters."""

_CHAR_SIZES = (3, 4, 5)


def features(text: str) -> list[str]:
    """The features of a complaint's text (title and body): stems, stem pairs, and the
    character n-grams of each word."""
    words = normalize(text)
    stems = [stem(w) for w in words]
    out = [f"w:{s}" for s in stems]
    out += [f"b:{a}_{b}" for a, b in itertools.pairwise(stems)]
    for word in words:
        padded = f" {word} "
        for n in _CHAR_SIZES:
            out += [f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1)]
    return out


def label_of(code: str) -> str:
    """The class a unit's complaints are learned as (sub-district offices share one)."""
    return KECAMATAN if code.startswith("kec_") else code


@dataclass(frozen=True)
class Calibration:
    """Isotonic map from a decision's raw score to the probability it is right.

    Fitted on decisions the model did not train on (cross-validated), so that a decision
    that says 0.9 is right nine times in ten: the auto-dispose threshold means what it says.
    """

    raw: tuple[float, ...] = (0.0, 1.0)
    right: tuple[float, ...] = (0.0, 1.0)

    def __call__(self, score: float) -> float:
        return float(np.interp(score, self.raw, self.right))


@dataclass(frozen=True)
class Weights:
    """How much each rule's evidence adds to the model's log-probability of a unit.

    Fitted beside the model on the development corpus (``lapor.router.training``).
    """

    keyword: float = 1.0
    """Per keyword hit of the unit."""
    category: float = 2.0
    """The unit owns the category the reporter chose."""
    suggested: float = 0.5
    """The reporter suggested the unit."""
    referred: float = 4.0
    """An officer who declined the complaint named the unit as authorized."""


@dataclass(frozen=True, eq=False)
class TextModel:
    """A trained classifier: classes, vocabulary, idf, weights; pure data."""

    classes: tuple[str, ...]
    vocabulary: Mapping[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    weights: Weights = field(default_factory=Weights)
    calibration: Calibration = field(default_factory=Calibration)
    info: Mapping[str, object] = field(default_factory=dict)
    """How it was trained: seed, examples, sources, figures. Part of its version."""

    @cached_property
    def version(self) -> str:
        """``m-`` and the first 12 hex digits of the SHA-256 of the archive: the same
        training data and seed give the same version."""
        return "m-" + hashlib.sha256(self.to_bytes()).hexdigest()[:12]

    def probabilities(self, text: str) -> dict[str, float]:
        """Each class's probability for ``text`` (they sum to 1)."""
        counts = Counter(
            index for f in features(text) if (index := self.vocabulary.get(f)) is not None
        )
        scores = self.intercept.astype(np.float64)
        if counts:
            columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            values = tf * self.idf[columns]
            values /= math.sqrt(float(values @ values))
            scores = scores + self.coef[:, columns].astype(np.float64) @ values
        scores -= scores.max()
        exp = np.exp(scores)
        exp /= exp.sum()
        return dict(zip(self.classes, exp.tolist(), strict=True))

    # --- storage: a NumPy archive, no pickle ------------------------------------------

    def to_bytes(self) -> bytes:
        meta = {
            "features_version": FEATURES_VERSION,
            "classes": list(self.classes),
            "weights": vars(self.weights),
            "calibration": {
                "raw": list(self.calibration.raw),
                "right": list(self.calibration.right),
            },
            "info": dict(self.info),
        }
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8),
            terms=np.frombuffer("\n".join(terms).encode(), dtype=np.uint8),
            idf=self.idf.astype(np.float32),
            coef=self.coef.astype(np.float16),
            intercept=self.intercept.astype(np.float32),
        )
        return _deterministic(buffer.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> TextModel:
        """Load an archive written by ``to_bytes``; ``ValueError`` if it is not one."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                meta = json.loads(archive["meta"].tobytes())
                terms = archive["terms"].tobytes().decode().split("\n")
                idf, coef, intercept = archive["idf"], archive["coef"], archive["intercept"]
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f"not a routing model archive: {error}") from error
        if meta.get("features_version") != FEATURES_VERSION:
            raise ValueError(
                f"routing model built on features v{meta.get('features_version')}, "
                f"this router computes v{FEATURES_VERSION}"
            )
        classes = tuple(meta["classes"])
        if coef.shape != (len(classes), len(terms)) or idf.shape != (len(terms),):
            raise ValueError("routing model archive: arrays do not match its classes and terms")
        return cls(
            classes=classes,
            vocabulary={term: i for i, term in enumerate(terms)},
            idf=idf.astype(np.float64),
            coef=coef.astype(np.float32),
            intercept=intercept.astype(np.float64),
            weights=Weights(**meta["weights"]),
            calibration=Calibration(
                tuple(meta["calibration"]["raw"]), tuple(meta["calibration"]["right"])
            ),
            info=meta["info"],
        )


SHIPPED = "shipped_model.npz"
"""The model trained on the development part of the project's corpus, beside this module."""


def shipped_model() -> TextModel:
    """The model a new deployment starts from (``make model`` rebuilds it)."""
    from importlib.resources import files

    return TextModel.from_bytes(files("lapor.router").joinpath(SHIPPED).read_bytes())


def _deterministic(npz: bytes) -> bytes:
    """The archive with its zip members' timestamps zeroed, so equal models are equal
    bytes (and so have equal versions)."""
    source = zipfile.ZipFile(io.BytesIO(npz))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            fixed = zipfile.ZipInfo(item.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(item.filename))
    return out.getvalue()


def top(probabilities: Mapping[str, float], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` most probable classes, most probable first (ties by name)."""
    return sorted(probabilities.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def texts(items: Iterable[Mapping[str, object]]) -> list[str]:
    """The text a model reads of each corpus item or complaint: title and body."""
    return [f"{item.get('title') or ''}\n{item.get('body') or ''}" for item in items]
