"""The events of a complaint's life, as pydantic v2 models.

Past-tense names; each carries only what its readers need. Reporter contact is not in
any of these: it travels as ``ReporterIdentified`` in a stream no agency can read.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lapor.shared.envelope import FROM_LOG, Event, register

OPD_CODE = r"^[a-z][a-z0-9_]{1,63}$"
"""OPD codes appear in subject names, so they are restricted to safe characters."""

UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls but tab, newline and carriage return; DEL; C1 controls; lone surrogates."""
REPLACEMENT = "\ufffd"


def _storable(text: Any, info: ValidationInfo) -> Any:
    """Refuse what a read model cannot store: PostgreSQL rejects NUL in ``text`` and
    ``jsonb``, a lone surrogate cannot be encoded as UTF-8 at all, and the other controls
    have no business in a complaint (they hide text in terminals, CSVs and logs).

    Read back from the log (``decode`` validates with the ``FROM_LOG`` context) the same
    characters are replaced by U+FFFD instead: the log cannot be purged, so an event that
    got in before this check must stay readable and projectable, and it is replaced the
    same way on every read, so a rebuilt read model equals the live one.
    """
    if isinstance(text, bytes | bytearray):  # pydantic would decode it after this check
        text = _utf8(text)
    if not isinstance(text, str) or UNSTORABLE.search(text) is None:
        return text
    if info.context and info.context.get(FROM_LOG):
        return UNSTORABLE.sub(REPLACEMENT, text)
    # The reason names the rule, never the input (it may hold personal data).
    raise PydanticCustomError(
        "unstorable_text", "must not contain control characters or unpaired surrogates"
    )


def _utf8(data: bytes | bytearray) -> str | bytes | bytearray:
    try:
        return bytes(data).decode()
    except UnicodeDecodeError:
        return data  # not text: pydantic's own error says so


# Checked before the string is validated: pydantic's own check would refuse a lone surrogate
# with a less telling reason, and the length constraints, inside, still read "String should
# have at most N characters".
_STORABLE = BeforeValidator(_storable)

Text = Annotated[str, _STORABLE]
"""Free text that every read model can store: the type of every free-text field. Give a
required field its lengths with ``Field``; an optional one needs a sized kind like those
below (lengths on ``Text | None`` would be checked outside the validator and read "Value
should have at most N items")."""
ReasonText = Annotated[str, Field(min_length=1, max_length=2000), _STORABLE]
"""Why an admin or officer acted (hold, Bukan Wewenang)."""
MessageText = Annotated[str, Field(min_length=1, max_length=4000), _STORABLE]
"""A follow-up, an answer, a reply: what one side tells the other."""
NoteText = Annotated[str, Field(max_length=2000), _STORABLE]
"""An optional remark (archive note, rating comment)."""
NameText = Annotated[str, Field(max_length=200), _STORABLE]
"""A person's name as given."""
AddressText = Annotated[str, Field(max_length=500), _STORABLE]
PlaceText = Annotated[str, Field(max_length=100), _STORABLE]
"""The name of a kecamatan or kelurahan."""
FileNameText = Annotated[str, Field(min_length=1, max_length=255), _STORABLE]
"""An attachment's file name as the reporter's device gave it, cleaned by intake (no
folders, no control characters)."""


class ReportType(StrEnum):
    """Jenis laporan."""

    COMPLAINT = "pengaduan"
    ASPIRATION = "aspirasi"
    INFORMATION_REQUEST = "permintaan_informasi"


class Channel(StrEnum):
    """Where the report came in (kanal)."""

    WEB = "web"
    MOBILE_APP = "mobile_app"
    SMS = "sms"
    SOCIAL_MEDIA = "social_media"
    INTEGRATED = "integrated"


class Location(BaseModel):
    """Lokasi kejadian: an address, the sub-district and village, and optionally a point."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: AddressText | None = None
    kecamatan: PlaceText | None = Field(default=None, description="Sub-district")
    kelurahan: PlaceText | None = Field(default=None, description="Village")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _point_is_whole(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class Complaint(BaseModel):
    """What a citizen reports; shared by the intake request and ``ComplaintReceived``."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    report_type: ReportType = ReportType.COMPLAINT
    channel: Channel = Channel.WEB
    title: Text = Field(min_length=5, max_length=200)
    body: Text = Field(min_length=10, max_length=4000)
    category: str | None = Field(
        default=None, max_length=64, pattern=r"^[a-z0-9_]+$", description="Category code"
    )
    location: Location | None = None
    incident_date: date | None = None
    suggested_opd: str | None = Field(
        default=None,
        max_length=64,
        pattern=OPD_CODE,
        description="The OPD the citizen thinks is responsible, if any",
    )
    anonymous: bool = Field(default=False, description="Anonim: identity hidden from the agency")
    confidential: bool = Field(default=False, description="Rahasia: content never public")


SHA256_HEX = r"^[0-9a-f]{64}$"


class AttachmentRef(BaseModel):
    """A photo or document the reporter attached: a reference to its bytes in the
    attachments' object store (``<ROOT>_ATTACHMENTS``), never the bytes themselves.

    The bytes are the ones intake stored: checked by their content, images re-encoded
    without their metadata (EXIF, GPS, XMP, comments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description="The object's name in the attachments' store (today its sha256)",
    )
    sha256: str = Field(pattern=SHA256_HEX, description="Digest of the stored bytes, hex")
    media_type: str = Field(
        pattern=r"^[a-z]+/[a-z0-9.+-]+$",
        description="What the bytes are, found from the bytes themselves (image/jpeg, "
        "image/png, image/webp, application/pdf)",
    )
    size: int = Field(ge=0, description="Bytes stored")
    filename: FileNameText | None = Field(
        default=None, description="The name the reporter's device gave it, cleaned"
    )


@register
class ComplaintReceived(Complaint, Event):
    """A complaint was accepted and given its tracking ID (laporan diterima)."""

    TYPE = "complaint.received"

    attachments: list[AttachmentRef] = Field(
        default_factory=list,
        description="Photos and documents, stored before this event was appended",
    )


class RoutingCandidate(BaseModel):
    """One of the text classifier's most probable units for a complaint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    opd: str = Field(
        pattern=OPD_CODE,
        description="A unit's code, or 'kecamatan' for the sub-district offices as one class",
    )
    probability: float = Field(ge=0, le=1)


@register
class ComplaintRouted(Event):
    """The complaint was assigned to the OPD authorized to act (disposisi)."""

    TYPE = "complaint.routed"

    opd: str = Field(pattern=OPD_CODE, description="Code of the OPD the complaint now belongs to")
    opd_name: Text
    rule: Text = Field(description="The routing rule that fired")
    reason: Text = Field(description="Why, in words an operator can read")
    confidence: float = Field(ge=0, le=1)
    rules_version: Text
    excluded: list[Text] = Field(
        default_factory=list,
        description="OPDs that declared 'not our authority' and were not considered again",
    )
    level: Text | None = Field(default=None, description="Level of government of the OPD")
    candidates: list[RoutingCandidate] = Field(
        default_factory=list,
        description="The text classifier's top units with their probabilities",
    )
    model_version: Text | None = Field(
        default=None, description="Version of the routing model that weighed in, if any"
    )


class Actor(BaseModel):
    """Who did something: a role and, for agency officers, their unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str = Field(pattern=r"^(admin|agency|reporter|system)$")
    opd: str | None = Field(default=None, pattern=OPD_CODE)
    name: NameText | None = None


@register
class ComplaintDisposed(Event):
    """Verified and disposed to the unit that is to act (verifikasi, disposisi)."""

    TYPE = "complaint.disposed"

    opd: str = Field(pattern=OPD_CODE)
    opd_name: Text
    by: Actor
    automatic: bool = Field(description="Disposed by policy from a confident proposal")


class ArchiveReason(StrEnum):
    """Why a report is archived (arsipkan); out-of-scope reasons point elsewhere."""

    WRONG_FORMAT = "wrong_format"
    TOO_GENERAL = "too_general"
    NOT_PUBLIC_SERVICE = "not_public_service"
    DUPLICATE = "duplicate"
    ABUSIVE = "abusive"
    LEGAL_DISPUTE = "legal_dispute"
    CRIMINAL_REPORT = "criminal_report"
    CORRUPTION_CASE = "corruption_case"


@register
class ComplaintArchived(Event):
    """Arsip: closed without follow-up, with a reason the citizen is told."""

    TYPE = "complaint.archived"

    reason: ArchiveReason
    note: NoteText | None = None
    by: Actor


@register
class ComplaintPutOnHold(Event):
    """Tunda: waiting (e.g. for more information); the deadline clock stops."""

    TYPE = "complaint.put_on_hold"

    reason: ReasonText
    by: Actor


@register
class ComplaintResumed(Event):
    """Off hold; the deadline clock runs again."""

    TYPE = "complaint.resumed"

    by: Actor


@register
class AuthorityDeclined(Event):
    """Bukan Wewenang: the unit is not authorized; the complaint goes back to routing."""

    TYPE = "complaint.authority_declined"

    opd: str = Field(pattern=OPD_CODE)
    reason: ReasonText
    by: Actor
    suggested_opd: str | None = Field(
        default=None,
        pattern=OPD_CODE,
        description="The unit the declining officer believes is authorized",
    )


@register
class FollowUpPosted(Event):
    """The OPD posted a follow-up (tindak lanjut)."""

    TYPE = "complaint.followed_up"

    opd: str = Field(pattern=OPD_CODE)
    message: MessageText
    officer: NameText | None = None


@register
class ComplaintResolved(Event):
    """The OPD finished the complaint (selesai)."""

    TYPE = "complaint.resolved"

    opd: str = Field(pattern=OPD_CODE)
    resolution: MessageText
    officer: NameText | None = None


@register
class ReporterReplied(Event):
    """The reporter answered the follow-up (tanggapan pelapor)."""

    TYPE = "complaint.reporter_replied"

    message: MessageText


@register
class ComplaintRated(Event):
    """The reporter rated the answer (penilaian), 1 to 5 stars."""

    TYPE = "complaint.rated"

    stars: int = Field(ge=1, le=5)
    comment: NoteText | None = None


@register
class ComplaintReopened(Event):
    """The reporter is not satisfied: back to the unit."""

    TYPE = "complaint.reopened"

    reason: MessageText


@register
class ComplaintClosed(Event):
    """Selesai: confirmed by the reporter, or closed after the reply period ran out."""

    TYPE = "complaint.closed"

    reason: str = Field(pattern=r"^(confirmed_by_reporter|no_reply)$")
    by: Actor


class DeadlineStep(StrEnum):
    DISPOSITION = "disposition"
    FIRST_FOLLOW_UP = "first_follow_up"
    REPORTER_REPLY = "reporter_reply"


@register
class DeadlineWarned(Event):
    """A deadline is near."""

    TYPE = "complaint.deadline_warned"

    step: DeadlineStep
    due_at: datetime
    opd: str | None = Field(default=None, pattern=OPD_CODE)


@register
class DeadlineBreached(Event):
    """A deadline passed; the complaint is escalated to the coordinating admin."""

    TYPE = "complaint.deadline_breached"

    step: DeadlineStep
    due_at: datetime
    opd: str | None = Field(default=None, pattern=OPD_CODE)
    escalated_to: str = Field(pattern=OPD_CODE)


class ReporterContact(BaseModel):
    """Who reported; never in the log or an agency topic."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: NameText | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{6,32}$")
    email: EmailStr | None = None


@register
class ReporterIdentified(ReporterContact, Event):
    """The reporter's contact, kept apart from the log so that it can be erased."""

    TYPE = "reporter.identified"


@register
class ComplaintAssigned(Event):
    """An agency's copy of a complaint disposed to it: content, no reporter identity."""

    TYPE = "agency.complaint_assigned"

    opd: str = Field(pattern=OPD_CODE)
    report_type: ReportType
    channel: Channel
    title: Text
    body: Text
    category: Text | None
    location: Location | None
    incident_date: date | None
    confidential: bool
    reason: Text
