"""Free text is storable by construction: new input with control characters or lone
surrogates is refused, and whatever the log already holds is still read, repaired."""

import uuid
from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from lapor.shared import events
from lapor.shared.envelope import Envelope, decode, envelope, parse, registered_events
from lapor.shared.events import (
    Actor,
    ComplaintArchived,
    ComplaintReceived,
    FollowUpPosted,
    Location,
    ReporterContact,
    Text,
)

CID = "7K3MQ-9X2AB"
FORBIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\x80", "\x9b", "\ud800", "\udfff"]
ALLOWED = [
    "\t",
    "\n",
    "\r",
    "\u202e",  # right-to-left override: storable; what a page shows is the page's business
    "\u200d",  # zero-width joiner
    "👩‍👩‍👧",
    "e\u0301",  # combining acute accent
    "Jl. Gajah Mada, Kelurahan Benua Melayu Darat",
    "%00 \\0 ' \" <script> '; DROP TABLE x;--",
    "\ufffd",
]
_STORABLE = get_args(Text)[1]


@pytest.mark.parametrize("char", FORBIDDEN)
def test_new_text_with_an_unstorable_character_is_refused_without_echoing_it(char):
    title = f"Jalan{char}rusak parah"
    with pytest.raises(ValidationError) as raised:
        ComplaintReceived(title=title, body="Jalan berlubang di depan pasar")
    (error,) = raised.value.errors()
    assert error["loc"] == ("title",)
    assert error["msg"] == "must not contain control characters or unpaired surrogates"
    assert title not in error["msg"]


@pytest.mark.parametrize(
    "build",
    [
        lambda t: Location(address=t),
        lambda t: ReporterContact(name=t),
        lambda t: Actor(role="admin", name=t),
        lambda t: FollowUpPosted(opd="dpupr", message=t),
        lambda t: ComplaintArchived(reason="duplicate", note=t, by=Actor(role="admin")),
    ],
)
def test_every_kind_of_free_text_refuses_nul(build):
    with pytest.raises(ValidationError, match="control characters"):
        build("ada\x00di sini")


@pytest.mark.parametrize("text", ALLOWED)
def test_storable_text_is_kept_as_given(text):
    event = FollowUpPosted(opd="dpupr", message=f"Tim {text} sudah datang")
    assert event.message == f"Tim {text} sudah datang"


def _poisoned(payload: dict[str, Any], event_type: str) -> Envelope:
    """An envelope as an old log may hold it: built around validation, as JSON bytes."""
    raw = Envelope(
        event_id=uuid.uuid4(),
        type=event_type,
        version=1,
        occurred_at="2024-05-02T03:04:05Z",
        complaint_id=CID,
        correlation_id=uuid.uuid4(),
        payload=payload,
    )
    return parse(raw.to_json())


def test_unstorable_characters_already_in_the_log_are_replaced_when_read():
    env = _poisoned(
        {
            "title": "Jalan\x00rusak\x7f",
            "body": "Berlubang\x1b[31m di depan pasar",
            "location": {"address": "Jl.\x9b Merdeka"},
        },
        "complaint.received",
    )
    event = decode(env)
    assert isinstance(event, ComplaintReceived)
    assert event.title == "Jalan\ufffdrusak\ufffd"
    assert event.body == "Berlubang\ufffd[31m di depan pasar"
    assert event.location is not None and event.location.address == "Jl.\ufffd Merdeka"
    assert decode(env) == event  # the same on every read: a rebuild equals the live model


def test_nested_text_in_the_log_is_repaired_too():
    env = _poisoned(
        {"reason": "duplicate", "note": "catatan\x00", "by": {"role": "admin", "name": "R\x00"}},
        "complaint.archived",
    )
    event = decode(env)
    assert isinstance(event, ComplaintArchived)
    assert (event.note, event.by.name) == ("catatan\ufffd", "R\ufffd")


def test_clean_events_read_back_unchanged():
    event = ComplaintReceived(title="Jalan\trusak 👩‍👩‍👧", body="Berlubang\r\ndi depan pasar")
    env = envelope(event, complaint_id=CID, correlation_id=uuid.uuid4())
    assert decode(parse(env.to_json())) == event


def test_repair_is_only_for_the_log_not_for_other_validation():
    payload = {"title": "Jalan\x00rusak", "body": "Berlubang di depan pasar"}
    with pytest.raises(ValidationError):
        ComplaintReceived.model_validate(payload)
    with pytest.raises(ValidationError):
        ComplaintReceived.model_validate(payload, context={"something": "else"})


# --- every free-text field is Text --------------------------------------------------------


def _unguarded(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[str]:
    """Paths of the string fields of ``model`` that are neither ``Text`` nor a pattern."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        found += _walk(field.annotation, list(field.metadata), (*path, name))
    return found


def _walk(annotation: Any, metadata: list[Any], path: tuple[str, ...]) -> list[str]:
    if annotation is str:
        return [] if any(_guards(m) for m in metadata) else [".".join(path)]
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        return _walk(base, metadata + extra, path)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _unguarded(annotation, path)
    return [leaf for arg in get_args(annotation) for leaf in _walk(arg, metadata, path)]


def _guards(metadata: Any) -> bool:
    if isinstance(metadata, FieldInfo):
        return any(_guards(m) for m in metadata.metadata)
    return metadata is _STORABLE or getattr(metadata, "pattern", None) is not None


@pytest.mark.parametrize(
    "model",
    [*registered_events().values(), events.Complaint, events.Location, events.ReporterContact],
    ids=lambda m: m.__name__,
)
def test_every_string_field_is_storable_text_or_a_code(model):
    assert _unguarded(model) == []


def test_the_field_walker_finds_a_plain_string():
    class Loose(BaseModel):
        fine: Text
        loose: list[str | None]

    assert _unguarded(Loose) == ["loose"]


def test_sized_text_keeps_the_usual_length_reasons():
    with pytest.raises(ValidationError, match="String should have at most 4000 characters"):
        FollowUpPosted(opd="dpupr", message="x" * 4001)
    with pytest.raises(ValidationError, match="String should have at most 500 characters"):
        Location(address="x" * 501)


def test_text_coerced_from_bytes_is_checked_too():
    with pytest.raises(ValidationError, match="control characters"):
        ReporterContact(name=b"Siti\x00")
