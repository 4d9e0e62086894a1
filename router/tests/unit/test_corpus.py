"""The project's routing corpus: well-formed, labelled with units that exist, and its test
part unchanged since it was frozen (tests/routing/corpus/README.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from lapor.router import corpus
from lapor.shared.registry import load_registry

ROOT = Path(__file__).resolve().parents[3]
TEST_PART = ROOT / "tests/routing/corpus/test.jsonl"
README = ROOT / "tests/routing/corpus/README.md"
REGENCY_ONLY = re.compile(r"^(dpmd|kec_(?!pontianak_)\w+)$")


def test_the_test_part_is_the_one_frozen_before_tuning() -> None:
    recorded = re.search(r"SHA-256\s+`([0-9a-f]{64})`", README.read_text()).group(1)
    assert hashlib.sha256(TEST_PART.read_bytes()).hexdigest() == recorded


def test_every_label_is_a_unit_of_the_deployment() -> None:
    units = {u.code for u in load_registry().units}
    for item in [*corpus.development(), *corpus.load(TEST_PART)]:
        for label in (item.expected, *item.also_right):
            if item.deployment == "pontianak":
                assert label in units, (item.id, label)
            else:
                assert label in units or REGENCY_ONLY.match(label), (item.id, label)


def test_the_parts_are_disjoint_and_cover_every_unit() -> None:
    development, test = corpus.development(), corpus.load(TEST_PART)
    assert len(development) >= 1000 and len(test) >= 500
    assert not {i.id for i in development} & {i.id for i in test}
    texts = {i.complaint.body for i in development}
    assert not [i.id for i in test if i.complaint.body in texts]
    units = {u.code for u in load_registry().units}
    for part in (development, test):
        assert units <= {i.expected for i in part if i.deployment == "pontianak"}


def test_the_shipped_model_was_trained_on_this_development_part() -> None:
    # `make model` retrains it; a corpus edited without retraining fails here.
    from importlib.resources import files

    from lapor.router.model import FEATURES_VERSION, shipped_model

    model = shipped_model()
    data = files("lapor.router").joinpath("development.jsonl").read_bytes()
    assert model.info["corpus_sha256"] == hashlib.sha256(data).hexdigest()
    assert model.info["features_version"] == FEATURES_VERSION
    assert model.info["examples"] == len(corpus.development())
