"""The events of a complaint's life, as pydantic v2 models.

Past-tense names; each carries only what its readers need. Reporter contact is not in
any of these: it travels as ``ReporterIdentified`` in a stream no agency can read.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from lapor.shared.envelope import Event, register

OPD_CODE = r"^[a-z][a-z0-9_]{1,63}$"
"""OPD codes appear in subject names, so they are restricted to safe characters."""


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

    address: str | None = Field(default=None, max_length=500)
    kecamatan: str | None = Field(default=None, max_length=100, description="Sub-district")
    kelurahan: str | None = Field(default=None, max_length=100, description="Village")
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
    title: str = Field(min_length=5, max_length=200)
    body: str = Field(min_length=10, max_length=4000)
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


@register
class ComplaintReceived(Complaint, Event):
    """A complaint was accepted and given its tracking ID (laporan diterima)."""

    TYPE = "complaint.received"


@register
class ComplaintRouted(Event):
    """The complaint was assigned to the OPD authorized to act (disposisi)."""

    TYPE = "complaint.routed"

    opd: str = Field(pattern=OPD_CODE, description="Code of the OPD the complaint now belongs to")
    opd_name: str
    rule: str = Field(description="The routing rule that fired")
    reason: str = Field(description="Why, in words an operator can read")
    confidence: float = Field(ge=0, le=1)
    rules_version: str


@register
class FollowUpPosted(Event):
    """The OPD posted a follow-up (tindak lanjut)."""

    TYPE = "complaint.followed_up"

    opd: str = Field(pattern=OPD_CODE)
    message: str = Field(min_length=1, max_length=4000)
    officer: str | None = Field(default=None, max_length=200)


@register
class ComplaintResolved(Event):
    """The OPD finished the complaint (selesai)."""

    TYPE = "complaint.resolved"

    opd: str = Field(pattern=OPD_CODE)
    resolution: str = Field(min_length=1, max_length=4000)
    officer: str | None = Field(default=None, max_length=200)


class ReporterContact(BaseModel):
    """Who reported; never in the log or an agency topic."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
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
    title: str
    body: str
    category: str | None
    location: Location | None
    incident_date: date | None
    confidential: bool
    reason: str
