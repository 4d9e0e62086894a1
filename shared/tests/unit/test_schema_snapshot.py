from pathlib import Path

from lapor.shared.schemas import generate

COMMITTED = Path(__file__).parents[2] / "schemas"


def test_committed_schemas_match_the_models():
    generated = generate()
    committed = {p.name: p.read_text() for p in COMMITTED.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run `make schemas` and commit the result"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run `make schemas` and commit it"


def test_every_event_schema_names_its_type_and_version():
    for name, text in generate().items():
        if name != "envelope.json":
            assert '"x-event-type"' in text and '"x-event-version"' in text, name
