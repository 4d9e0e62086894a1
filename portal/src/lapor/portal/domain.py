"""The portal's words and pictures: pure functions, no I/O.

* A form as intake's ``POST /complaints`` body, and intake's ``422`` errors back beside
  the form's fields, their reasons in the page's language.
* Each event of a complaint's history in plain words; each status as the public sees it.
* The dashboard's charts as geometry (the templates draw the SVG).

Message ids are English and marked with :func:`N_`; the catalogues translate them
(Indonesian first: ``locale/id``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def N_(message: str) -> str:
    """Marks a message id for the catalogues; translated where it is shown."""
    return message


REPORT_TYPES = {
    "pengaduan": N_("Complaint (pengaduan)"),
    "aspirasi": N_("Aspiration (aspirasi)"),
    "permintaan_informasi": N_("Request for information (permintaan informasi)"),
}

PUBLIC_STATUS = {
    "received": N_("Not yet verified"),
    "disposed": N_("Not yet followed up"),
    "in_progress": N_("In progress"),
    "answered": N_("In progress"),
    "closed": N_("Finished"),
    "on_hold": N_("On hold"),
    "archived": N_("Archived"),
}
"""The public statuses of SP4N-LAPOR! (the Indonesian catalogue holds the official labels:
Belum Terverifikasi, Belum Ditindaklanjuti, Proses, Selesai, Tertunda, Arsip)."""

CHANNELS = {
    "web": N_("Website"),
    "mobile_app": N_("Mobile app"),
    "sms": N_("SMS"),
    "social_media": N_("Social media"),
    "integrated": N_("Integrated (another agency's system)"),
}
"""The channels a report comes in by (intake's ``channel``)."""

STAFF_STATUS = {
    "received": N_("Not yet verified (staff)"),
    "disposed": N_("Disposed, not yet followed up"),
    "in_progress": N_("Disposed, being processed"),
    "answered": N_("Disposed, waiting for the reporter"),
    "closed": N_("Disposed, finished"),
    "on_hold": N_("On hold (staff)"),
    "archived": N_("Archived (staff)"),
}
"""The statuses the coordinator and the units see (the Indonesian catalogue holds the
LAPOR! labels: Belum Terverifikasi, Terdisposisi, Belum Ditindaklanjuti ...)."""

ARCHIVE_REASONS = {
    "wrong_format": N_("Wrong format"),
    "too_general": N_("Too general"),
    "not_public_service": N_("Not about a public service"),
    "duplicate": N_("Duplicate"),
    "abusive": N_("Abusive"),
    "legal_dispute": N_("A legal dispute"),
    "criminal_report": N_("A criminal report"),
    "corruption_case": N_("A corruption case"),
}
"""Why a report is archived, as the coordinator chooses."""

ARCHIVE_GUIDANCE = {
    "wrong_format": N_("The report could not be read; please submit it again."),
    "too_general": N_("Please say what happened, where and when, and submit again."),
    "not_public_service": N_("This channel handles complaints about public services."),
    "duplicate": N_("The same report is already being handled."),
    "abusive": N_("The report broke the channel's rules of conduct."),
    "legal_dispute": N_("Legal disputes are decided by the courts (pengadilan)."),
    "criminal_report": N_("Report crimes to the police (SPKT Polri, call 110)."),
    "corruption_case": N_(
        "Report corruption to the KPK (kws.kpk.go.id) or the Attorney General's office."
    ),
}
"""What the citizen is told for each reason: ``lapor.shared.words.ARCHIVE_GUIDANCE``
word for word (a test holds them equal), marked here so the catalogues translate it."""

EVENT_WORDS = {
    "complaint.received": N_("Report received"),
    "complaint.routed": N_("The system proposed the unit responsible"),
    "complaint.disposed": N_("Verified and sent to the unit responsible"),
    "complaint.archived": N_("Archived"),
    "complaint.put_on_hold": N_("Put on hold (the deadline clock stops)"),
    "complaint.resumed": N_("Taken up again"),
    "complaint.authority_declined": N_(
        "The unit said it is not its authority: the report is being sent on"
    ),
    "complaint.followed_up": N_("The unit posted a follow-up"),
    "complaint.resolved": N_("The unit answered; waiting for the reporter"),
    "complaint.reporter_replied": N_("The reporter replied"),
    "complaint.rated": N_("The reporter rated the answer"),
    "complaint.reopened": N_("Reopened: the reporter was not satisfied"),
    "complaint.closed": N_("Finished"),
    "complaint.deadline_warned": N_("The deadline is near"),
    "complaint.deadline_breached": N_("The deadline passed: the coordinator was told"),
}
OTHER_EVENT = N_("Status updated")

# --- the form ---------------------------------------------------------------------------

FIELDS = (
    "report_type",
    "title",
    "body",
    "category",
    "incident_date",
    "kecamatan",
    "kelurahan",
    "address",
    "anonymous",
    "confidential",
    "attachments",
    "name",
    "phone",
    "email",
)
"""The form's fields, in the order a page lists their errors."""

FIELD_LABELS = {
    "report_type": N_("Type of report"),
    "title": N_("Title"),
    "body": N_("Your report"),
    "category": N_("Category"),
    "incident_date": N_("Date of the incident"),
    "kecamatan": N_("Sub-district (kecamatan)"),
    "kelurahan": N_("Village (kelurahan)"),
    "address": N_("Address"),
    "anonymous": N_("Anonymous (Anonim)"),
    "confidential": N_("Confidential (Rahasia)"),
    "attachments": N_("Photos or documents"),
    "name": N_("Name"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
}

GENERAL_ERROR = "_form"
"""Where an error that belongs to no one field is shown (above the form)."""


def submission(form: Mapping[str, str]) -> dict[str, Any]:
    """The form's values as intake's ``POST /complaints`` body (channel ``web``); empty
    fields are left out, so intake's own defaults and checks apply."""

    def value(name: str) -> str | None:
        text = (form.get(name) or "").strip()
        return text or None

    body: dict[str, Any] = {
        "channel": "web",
        "report_type": value("report_type") or "pengaduan",
        "title": form.get("title") or "",
        "body": form.get("body") or "",
        "anonymous": form.get("anonymous") == "on",
        "confidential": form.get("confidential") == "on",
    }
    for name in ("category", "incident_date"):
        if value(name):
            body[name] = value(name)
    location = {k: value(k) for k in ("address", "kecamatan", "kelurahan") if value(k)}
    if location:
        body["location"] = location
    reporter = {k: value(k) for k in ("name", "phone", "email") if value(k)}
    if reporter:
        body["reporter"] = reporter
    if form.get("share_photo_location") == "on":
        body["share_photo_location"] = True
    return body


def form_field(field: str) -> str:
    """Intake's field name (``location.kecamatan``, ``reporter.email``) as the form's."""
    parts = field.split(".")
    if parts[0] == "location":
        return parts[1] if len(parts) > 1 and parts[1] in FIELDS else "address"
    if parts[0] == "reporter":
        return parts[1] if len(parts) > 1 and parts[1] in FIELDS else "name"
    if parts[0].startswith("attachments"):  # attachments, attachments[2]
        return "attachments"
    return parts[0] if parts[0] in FIELDS else GENERAL_ERROR


_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"at least (?P<n>\d+) character"), N_("Write at least %(n)s characters.")),
    (re.compile(r"at most (?P<n>\d+) character"), N_("Write at most %(n)s characters.")),
    (re.compile(r"email", re.I), N_("This is not a valid e-mail address.")),
    (re.compile(r"valid date|date", re.I), N_("This is not a valid date (day, month, year).")),
    (re.compile(r"control character|surrogate", re.I), N_("It contains characters not allowed.")),
    (re.compile(r"Input should be '"), N_("Choose one of the options.")),
    (re.compile(r"already used", re.I), N_("This form was already sent with other content.")),
)
_PATTERN = {
    "phone": N_("Write a phone number: digits, spaces, +, ( ) and -."),
    "category": N_("Choose a category from the list."),
}
_FALLBACK = N_("Please check this field.")


_FILE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"at most (?P<n>\d+) files"), N_("Attach at most %(n)s files.")),
    (
        re.compile(r"larger than (?P<bytes>\d+) bytes"),
        N_("%(file)s is too large: at most %(mb)s MB a file."),
    ),
    (re.compile(r"pixels"), N_("%(file)s is too large a picture.")),
    (re.compile(r"animated", re.I), N_("%(file)s is animated: attach a still photo.")),
    (re.compile(r"PDF with"), N_("%(file)s holds scripts or embedded files: not accepted.")),
    (re.compile(r"empty"), N_("%(file)s is empty.")),
    (
        re.compile(r"not an accepted type|not a readable"),
        N_("%(file)s is not a photo (JPEG, PNG, WebP) or a PDF document."),
    ),
)
"""Intake's reasons for a refused file, as the form says them; ``%(file)s`` is its name."""


def megabytes(n: int) -> str:
    """A size limit in MB as the hint says it: 5, or 2.5."""
    return f"{n / (1024 * 1024):.1f}".removesuffix(".0")


def file_reason(field: str, text: str, files: Sequence[str] = ()) -> tuple[str, dict[str, str]]:
    """Intake's reason for a file (``attachments[i]``) or for the files together."""
    found = re.fullmatch(r"attachments\[(\d+)\]", field)
    index = int(found.group(1)) if found else None
    name = files[index] if index is not None and index < len(files) else ""
    label = name or (f"#{index + 1}" if index is not None else "")
    for pattern, message in _FILE_REASONS:
        if hit := pattern.search(text):
            values = {**hit.groupdict(), "file": label}
            if "bytes" in values:
                values["mb"] = megabytes(int(values.pop("bytes")))
            return message, values
    return _FALLBACK, {}


def reason(field: str, text: str) -> tuple[str, dict[str, str]]:
    """Intake's reason for ``field`` (the form's name) as a message id and its values."""
    if "pattern" in text and field in _PATTERN:
        return _PATTERN[field], {}
    for pattern, message in _REASONS:
        if found := pattern.search(text):
            return message, found.groupdict()
    return _FALLBACK, {}


def field_errors(
    errors: Sequence[Mapping[str, Any]], files: Sequence[str] = ()
) -> dict[str, list[tuple[str, dict]]]:
    """Intake's ``422`` ``errors`` by the form's field: (message id, values), in order.
    ``files``: the names of the files sent, in order (``attachments[i]`` names one)."""
    found: dict[str, list[tuple[str, dict]]] = {}
    for error in errors:
        field = str(error.get("field", ""))
        name = GENERAL_ERROR if field.lower() == "idempotency-key" else form_field(field)
        text = str(error.get("reason", ""))
        by_file = name == "attachments"
        message = file_reason(field, text, files) if by_file else reason(name, text)
        if message not in found.setdefault(name, []):
            found[name].append(message)
    return dict(sorted(found.items(), key=lambda kv: _order(kv[0])))


def _order(name: str) -> int:
    return FIELDS.index(name) if name in FIELDS else -1


# --- charts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    y: float
    width: float
    """Of the bar, in the chart's units (its full width is ``HBAR_WIDTH``)."""


HBAR_WIDTH = 300.0
HBAR_ROW = 34.0


def hbars(rows: Sequence[tuple[str, float]], top: float) -> list[Bar]:
    """Horizontal bars, one row each (label above, bar below), scaled so ``top`` fills the
    width; a negative or missing value is no bar."""
    scale = HBAR_WIDTH / top if top > 0 else 0.0
    return [
        Bar(label, value, i * HBAR_ROW, max(0.0, value) * scale)
        for i, (label, value) in enumerate(rows)
    ]


@dataclass(frozen=True)
class Line:
    name: str
    points: tuple[tuple[float, float], ...]

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


@dataclass(frozen=True)
class LineChart:
    width: float
    height: float
    left: float
    bottom: float
    top_value: float
    xs: tuple[float, ...]
    labels: tuple[str, ...]
    lines: tuple[Line, ...]
    ticks: tuple[tuple[float, int], ...]
    """(y, value) of the horizontal grid lines."""


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    width: float = 320.0,
    height: float = 180.0,
) -> LineChart:
    """Lines over ``labels`` (months), one per series, on a common scale from 0."""
    left, bottom, top_pad, right_pad = 36.0, 24.0, 8.0, 8.0
    top = max([v for values in series.values() for v in values] + [1])
    top_value = _nice(top)
    plot_w, plot_h = width - left - right_pad, height - bottom - top_pad
    step = plot_w / (len(labels) - 1) if len(labels) > 1 else 0.0
    xs = tuple(left + (i * step if len(labels) > 1 else plot_w / 2) for i in range(len(labels)))

    def y(value: float) -> float:
        return top_pad + plot_h * (1 - value / top_value)

    lines = tuple(
        Line(name, tuple((x, y(v)) for x, v in zip(xs, values, strict=False)))
        for name, values in series.items()
    )
    ticks = tuple((y(top_value * k / 4), round(top_value * k / 4)) for k in range(5))
    return LineChart(width, height, left, bottom, top_value, xs, tuple(labels), lines, ticks)


def _nice(value: float) -> int:
    """The smallest of 4, 8, 20, 40, 80, 200 … (four grid steps of 1, 2, 5 × 10^k) ≥ value."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude * 4 >= value:
                return step * magnitude * 4
        magnitude *= 10


# --- the notes the system writes -----------------------------------------------------------

_SYSTEM_NOTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "complaint.disposed",
        re.compile(r"^Disposed to (?P<unit>.+) \(automatically\)$"),
        N_("Disposed to %(unit)s (automatically)"),
    ),
    ("complaint.disposed", re.compile(r"^Disposed to (?P<unit>.+)$"), N_("Disposed to %(unit)s")),
    (
        "complaint.routed",
        re.compile(r"^Proposed: (?P<unit>[^.]+)\. (?P<rest>.*)$", re.S),
        N_("Proposed: %(unit)s. %(rest)s"),
    ),
    (
        "complaint.closed",
        re.compile(r"^Closed: the reporter confirmed$"),
        N_("Closed: the reporter confirmed"),
    ),
    (
        "complaint.closed",
        re.compile(r"^Closed: no reply from the reporter within the reply period$"),
        N_("Closed: no reply from the reporter within the reply period"),
    ),
    (
        "complaint.rated",
        re.compile(r"^(?P<stars>[1-5])/5(?:: (?P<rest>.*))?$", re.S),
        N_("%(stars)s of 5 stars"),
    ),
    (
        "complaint.authority_declined",
        re.compile(r"^(?P<rest>.*) \(suggests (?P<unit>[^()]+)\)$", re.S),
        N_("%(rest)s (suggests %(unit)s)"),
    ),
)


def note_words(event: str, note: str | None, gettext: Any) -> str | None:
    """A history note in the page's language. The tracker's notes are the log's words
    (``lapor.shared.words``): those the system writes (a disposition, the archive
    guidance, a closure, a rating's stars) are translated; what people wrote (a
    follow-up, an answer, a reason) is shown as written."""
    if not note:
        return note
    if event == "complaint.archived":
        for guidance in ARCHIVE_GUIDANCE.values():
            if note.startswith(guidance):
                return (gettext(guidance) + note[len(guidance) :]).strip()
        return note
    for kind, pattern, message in _SYSTEM_NOTES:
        found = pattern.match(note) if kind == event else None
        if found is None:
            continue
        values = {k: v for k, v in found.groupdict().items() if v is not None}
        words = gettext(message) % {**values, "rest": values.get("rest", "")}
        if event == "complaint.rated" and values.get("rest"):
            words += f": {values['rest']}"
        return words
    return note
