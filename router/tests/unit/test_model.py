"""The learned signal: features, the classifier kept as data, training, and the combined
decision with the rules (``lapor.router.model``, ``training``, ``routing``)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from lapor.router.domain import RoutingTable
from lapor.router.model import KECAMATAN, TextModel, Weights, features, label_of
from lapor.router.routing import Evidence, Router, scores, shares
from lapor.router.training import Example, refit, train
from lapor.shared.events import ComplaintReceived, Location

TOPICS = {
    "pdam": ["air pdam mati", "air keruh dari keran", "pipa air bocor", "tagihan air naik"],
    "pln": ["listrik padam", "token listrik error", "tiang listrik miring", "mati lampu terus"],
    "dppkp": ["pupuk subsidi langka", "petani gagal panen", "kucing liar banyak", "ternak sakit"],
    "kec_pontianak_kota": ["surat pengantar lama", "pelayanan kantor camat", "surat domisili"],
}
FILLERS = ["di rumah kami", "sudah seminggu", "tolong pak", "mohon dibantu", "warga resah"]


def complaint(text: str, **extra) -> ComplaintReceived:
    return ComplaintReceived(
        title=text[:60].ljust(5, "."), body=f"{text}. Mohon ditindaklanjuti.", **extra
    )


def examples() -> list[Example]:
    out = []
    for unit, texts in TOPICS.items():
        for text in texts:
            for filler in FILLERS:
                place = Location(kelurahan="Mariana") if unit.startswith("kec_") else None
                out.append(Example(complaint(f"{text} {filler}", location=place), unit))
    return out


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return RoutingTable.load()


@pytest.fixture(scope="module")
def model(table: RoutingTable) -> TextModel:
    return train(examples(), table, seed=0)


def test_features_are_stems_pairs_and_character_grams() -> None:
    found = features("Jln berlubang2")
    assert "w:jalan" in found and "w:lubang" in found
    assert "b:jalan_lubang" in found
    assert "c: ja" in found and "c:ang " in found


def test_sub_district_offices_are_learned_as_one_class() -> None:
    assert label_of("kec_pontianak_barat") == label_of("kec_pontianak_utara") == KECAMATAN
    assert label_of("pdam") == "pdam"


def test_probabilities_are_those_of_the_fitted_classifier(model: TextModel) -> None:
    # The router's NumPy inference computes what scikit-learn fitted: same features, same
    # tf-idf, same linear model (up to the float16 storage of the weights).
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    data = examples()
    texts = [f"{e.complaint.title}\n{e.complaint.body}" for e in data]
    vectorizer = TfidfVectorizer(analyzer=features, sublinear_tf=True, min_df=2)
    matrix = vectorizer.fit_transform(texts)
    reference = LogisticRegression(C=20.0, max_iter=2000, random_state=0).fit(
        matrix, [label_of(e.unit) for e in data]
    )
    text = "air keran keruh dan pipa bocor sejak kemarin"
    expected = reference.predict_proba(vectorizer.transform([text]))[0]
    got = model.probabilities(text)
    assert list(model.classes) == list(reference.classes_)
    assert np.allclose([got[c] for c in model.classes], expected, atol=2e-3)
    assert sum(got.values()) == pytest.approx(1.0)


def test_training_is_deterministic_and_the_version_names_the_model(table, model) -> None:
    again = train(examples(), table, seed=0)
    assert again.version == model.version
    assert again.to_bytes() == model.to_bytes()
    other = train(examples()[:-5], table, seed=0)
    assert other.version != model.version


def test_a_model_is_stored_as_data_and_loads_back(model: TextModel) -> None:
    data = model.to_bytes()
    loaded = TextModel.from_bytes(data)
    assert loaded.version == model.version
    assert loaded.classes == model.classes
    assert loaded.weights == model.weights and loaded.calibration == model.calibration
    text = "token listrik tidak masuk"
    assert loaded.probabilities(text) == pytest.approx(model.probabilities(text), abs=1e-6)
    # Nothing in the archive is a pickle: it loads with allow_pickle=False.
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == ["coef.npy", "idf.npy", "intercept.npy", "meta.npy", "terms.npy"]


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_an_archive_that_is_not_a_model_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="routing model"):
        TextModel.from_bytes(data)


def test_a_model_built_on_other_features_is_refused(model: TextModel, monkeypatch) -> None:
    import lapor.router.model as module

    data = model.to_bytes()
    monkeypatch.setattr(module, "FEATURES_VERSION", module.FEATURES_VERSION + 1)
    with pytest.raises(ValueError, match="features"):
        TextModel.from_bytes(data)


def test_the_calibration_is_a_monotone_map_onto_probabilities(model: TextModel) -> None:
    calibration = model.calibration
    assert list(calibration.raw) == sorted(calibration.raw)
    assert list(calibration.right) == sorted(calibration.right)
    assert all(0.0 <= p <= 1.0 for p in calibration.right)
    assert calibration(0.0) <= calibration(0.5) <= calibration(1.0)


def test_rules_evidence_is_added_to_the_model_score() -> None:
    units = RoutingTable.load().opds
    probabilities = {"pdam": 0.6, "pln": 0.4}
    weights = Weights(keyword=1.0, category=2.0, suggested=0.5, referred=4.0)
    plain = scores(probabilities, Evidence(), weights, units)
    assert plain["pdam"] > plain["pln"]
    backed = scores(probabilities, Evidence(keyword_hits={"pln": 1.0}), weights, units)
    assert backed["pln"] == pytest.approx(plain["pln"] + 1.0)
    assert max(shares(backed).items(), key=lambda kv: kv[1])[0] == "pln"
    # A declined unit is not a candidate at all; a class the deployment has no unit for
    # neither.
    assert "pdam" not in scores(probabilities, Evidence(), weights, units, frozenset({"pdam"}))
    assert "dpmd" not in scores({"dpmd": 0.9, "pln": 0.1}, Evidence(), weights, units)


def test_the_neighbourhood_class_goes_to_the_office_of_the_place() -> None:
    units = RoutingTable.load().opds
    evidence = Evidence(office="kec_pontianak_kota")
    got = scores({KECAMATAN: 0.9, "pln": 0.1}, evidence, Weights(), units)
    assert set(got) == {"kec_pontianak_kota", "pln"}
    assert set(scores({KECAMATAN: 0.9, "pln": 0.1}, Evidence(), Weights(), units)) == {"pln"}


def test_a_decision_names_the_model_its_candidates_and_the_rule(table, model) -> None:
    router = Router(table, model)
    decision = router.decide(complaint("pipa air bocor di depan rumah, air keruh"))
    assert decision.opd == "pdam"
    assert decision.model_version == model.version
    assert decision.rules_version == table.version
    assert decision.candidates[0].opd == "pdam"
    assert [c.probability for c in decision.candidates] == sorted(
        (c.probability for c in decision.candidates), reverse=True
    )
    assert decision.rule.startswith("keyword:")  # "pipa bocor" is a PDAM keyword too
    assert "text classifier" in decision.reason
    assert 0.0 <= decision.confidence <= 1.0


def test_a_unit_that_declined_is_never_chosen_and_a_referral_weighs(table, model) -> None:
    router = Router(table, model)
    text = complaint("kucing liar banyak di kompleks, sudah seminggu")
    assert router.decide(text).opd == "dppkp"
    declined = router.decide(text, exclude=frozenset({"dppkp"}), referred=("pln",))
    assert declined.opd == "pln"
    assert declined.rule == "referred:pln"
    assert declined.excluded == ("dppkp",)


def test_neighbourhood_matters_need_a_place(table, model) -> None:
    router = Router(table, model)
    placed = router.decide(
        complaint("surat pengantar lama sekali", location=Location(kelurahan="Mariana"))
    )
    assert placed.opd == "kec_pontianak_kota"
    unplaced = router.decide(complaint("surat pengantar lama sekali"))
    assert unplaced.opd != "kec_pontianak_kota"


def test_without_a_model_the_rules_decide_alone(table) -> None:
    text = complaint("Jalan berlubang di depan gang", category="jalan")
    assert Router(table).decide(text) == table.decide(text)
    assert Router(table).decide(text).model_version is None


def test_refitting_keeps_the_weights_and_calibration(table, model) -> None:
    more = [
        *examples(),
        Example(complaint("kucing liar di pasar"), "dppkp", weight=2.0, source="acted"),
    ]
    refitted = refit(more, model)
    assert refitted.weights == model.weights and refitted.calibration == model.calibration
    assert refitted.version != model.version
    assert refitted.info["refit_sources"] == {"acted": 1, "corpus": len(examples())}


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        ("Ini kewenangan Disperkim, bukan kami.", "disperkim"),
        ("Mohon dialihkan ke BPJS Kesehatan", "bpjs_kesehatan"),
        ("Urusan Dinas Lingkungan Hidup", "dlh"),
        ("Bukan kewenangan DPUPR.", None),  # the declining unit itself
        ("Bukan kewenangan kami.", None),
    ],
)
def test_a_unit_named_in_a_declines_reason_is_a_referral(table, reason, named) -> None:
    from lapor.router.routing import named_unit

    assert named_unit(table, reason, declining="dpupr") == named


def test_the_deployments_own_labels_calibrate_once_there_are_enough(table, monkeypatch) -> None:
    import lapor.router.training as training

    own = [Example(e.complaint, e.unit, weight=2.0, source="acted") for e in examples()[:40]]
    monkeypatch.setattr(training, "OWN_CALIBRATION", 30)
    assert train([*examples()[40:], *own], table).info["calibrated_on"] == "log"
    monkeypatch.setattr(training, "OWN_CALIBRATION", 41)
    assert train([*examples()[40:], *own], table).info["calibrated_on"] == "all"
