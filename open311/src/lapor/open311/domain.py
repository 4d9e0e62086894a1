"""Open311 GeoReport v2 in the platform's words: pure functions, no I/O.

* **Services** are the routing table's categories (``RoutingTable.load()``): one per
  category, ``service_name`` its Indonesian name from the category catalogue
  (``lapor.router.category_names``; the channel's language, as the citizens and units
  write), ``description`` both names and who handles it, grouped under the unit that owns
  it (a category held by several sub-district offices is grouped under all of them, one
  name after the other), plus ``umum`` (general) for a report without a category, which
  the router places by its words (No Wrong Door).
* **Requests** are complaints as the tracker's public listing shows them: the LAPOR!
  status becomes ``open`` or ``closed`` (``closed``: Selesai and Arsip), with the status
  in words in ``status_notes``; ``description`` is the report's text, ``address``,
  ``lat`` and ``long`` its place when known; the unit is ``agency_responsible``; the
  current deadline is ``expected_datetime``; the deadline policy in words is
  ``service_notice``. The reporter is never named: the tracker does not know them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from lapor.router.category_names import name_of
from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.lifecycle import Status
from lapor.shared.tracking import ALPHABET, PATTERN, normalise

GENERAL = "umum"
"""The service for a report of no particular category: the router decides by its words."""

WINDOW = timedelta(days=90)
"""The default and the widest span of ``start_date`` .. ``end_date``."""

MAX_RESULTS = 1000
"""The most requests one GET requests answers (the newest first)."""

CLOSED = frozenset({"closed", "archived"})
"""LAPOR! statuses that are Open311 ``closed``: finished (Selesai) and archived (Arsip)."""

LAPOR_STATUSES = {
    "open": tuple(s.value for s in Status if s.value not in CLOSED),
    "closed": tuple(s.value for s in Status if s.value in CLOSED),
}
"""The LAPOR! statuses each Open311 status stands for (the tracker's ``status`` filter)."""

STATUS_WORDS = {
    "received": "received, awaiting verification and disposition to the authorized unit",
    "disposed": "disposed to the authorized unit, not yet followed up",
    "in_progress": "the unit is working on it",
    "answered": "answered by the unit, waiting for the reporter's response",
    "closed": "finished",
    "on_hold": "on hold: the deadline clock is stopped",
    "archived": "archived: not handled by this channel; the reason says where to go",
}
"""Each LAPOR! status (the tracker's status names) in words."""


class Open311Error(Exception):
    """An Open311 error: HTTP ``code`` and ``[{"code", "description"}]`` as the body."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class ServiceType:
    code: str
    name: str
    group: str
    keywords: tuple[str, ...]
    description: str

    def as_open311(self) -> dict[str, Any]:
        return {
            "service_code": self.code,
            "service_name": self.name,
            "description": self.description,
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join(self.keywords) or None,
            "group": self.group,
        }


def catalogue(units: Sequence[Any], coordinator_name: str) -> dict[str, ServiceType]:
    """Every category of every unit (``UnitRules``: ``code``, ``name``, ``categories``,
    ``keywords``) as a service, in table order, then the general one."""
    holders: dict[str, list[Any]] = {}
    for unit in units:
        for category in unit.categories:
            holders.setdefault(category, []).append(unit)
    services: dict[str, ServiceType] = {}
    for category, owners in holders.items():
        group = "; ".join(u.name for u in owners)
        keywords = tuple(dict.fromkeys(k for u in owners for k in u.keywords))[:12]
        where = owners[0].name if len(owners) == 1 else "the sub-district office of the place"
        names = name_of(category)
        english = f" ({names.en})" if names.en != names.id else ""
        services[category] = ServiceType(
            code=category,
            name=names.id,
            group=group,
            keywords=keywords,
            description=f"{names.id}{english}: handled by {where}.",
        )
    if GENERAL not in services:
        services[GENERAL] = ServiceType(
            code=GENERAL,
            name="Umum (general)",
            group=coordinator_name,
            keywords=(),
            description="Anything else: routed by its words to the authorized unit "
            "(No Wrong Door Policy), or verified by the coordinating admin.",
        )
    return services


def service_notice(policy: DeadlinePolicy) -> str:
    """The deadline policy in words."""
    return (
        f"Verified and disposed to the authorized unit within {policy.disposition_days} "
        f"working days; first follow-up by the unit within {policy.first_follow_up_days} "
        f"working days; an answer the reporter does not reply to closes the report after "
        f"{policy.reporter_reply_days} working days. Working days skip weekends, public "
        "holidays and cuti bersama; a report on hold stops the clock."
    )


def is_closed(status: str) -> bool:
    return status in CLOSED


def status_notes(status: str, label: str | None) -> str:
    words = STATUS_WORDS.get(status, status.replace("_", " "))
    return f"{label}: {words}" if label else words


def timestamp(value: str | datetime | None) -> str | None:
    """ISO 8601 with an offset (a time without one is UTC)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def category_filter(codes: set[str]) -> list[str]:
    """``service_code`` values as the tracker's ``category`` filter: ``umum`` (a report
    without a category) is the empty value, unless the table has a category ``umum``."""
    return sorted("" if code == GENERAL else code for code in codes)


def address(location: Mapping[str, Any] | None) -> str | None:
    """The place in words, most specific first: the address the reporter gave, then the
    kelurahan and the kecamatan; None when none is known."""
    if not location:
        return None
    parts = [
        location.get("address"),
        f"Kelurahan {location['kelurahan']}" if location.get("kelurahan") else None,
        f"Kecamatan {location['kecamatan']}" if location.get("kecamatan") else None,
    ]
    return ", ".join(p for p in parts if p) or None


def as_request(
    summary: Mapping[str, Any], services: Mapping[str, ServiceType], notice: str
) -> dict[str, Any]:
    """A row of the tracker's public listing (``PublicComplaintSummary``, never a
    confidential complaint) as an Open311 service request.

    ``description`` is the report's text (its title for a row the tracker projected
    before it kept the text), ``address``, ``lat`` and ``long`` its place when the
    reporter gave one; the reporter is never named (nor is anyone else)."""
    status = summary["status"]
    where = summary.get("location") or {}
    code = summary.get("category") or GENERAL
    service = services.get(code)
    closed = is_closed(status)
    return {
        "service_request_id": summary["tracking_id"],
        "status": "closed" if closed else "open",
        "status_notes": status_notes(status, summary.get("status_label")),
        "service_name": service.name if service else name_of(code).id,
        "service_code": code,
        "description": summary.get("body") or summary.get("title"),
        "agency_responsible": summary.get("opd_name"),
        "service_notice": notice,
        "requested_datetime": timestamp(summary["received_at"]),
        "updated_datetime": timestamp(summary.get("updated_at")),
        "expected_datetime": None if closed else timestamp(summary.get("due_at")),
        "address": address(where),
        "address_id": None,
        "zipcode": None,
        "lat": where.get("lat"),
        "long": where.get("lon"),
        "media_url": None,
    }


def preceding_id(tracking_id: str) -> str | None:
    """The tracking ID just before this one (the tracker lists by ID after a given one),
    or None for the first possible ID."""
    digits = [ALPHABET.index(c) for c in tracking_id.replace("-", "")]
    for i in reversed(range(len(digits))):
        if digits[i] > 0:
            digits[i] -= 1
            break
        digits[i] = len(ALPHABET) - 1
    else:
        return None
    text = "".join(ALPHABET[d] for d in digits)
    return f"{text[:5]}-{text[5:]}"


def tracking_id(text: str) -> str:
    """A service_request_id as a tracking ID, or a 404 (it cannot name a complaint)."""
    candidate = normalise(text)
    if not re.match(PATTERN, candidate):
        raise Open311Error(404, f"no service request {text!r}")
    return candidate


def date_window(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``start_date`` .. ``end_date``: by default the 90 days up to now (or after start,
    or before end); wider than 90 days, or backwards, is a 400."""
    start_at = _date("start_date", start)
    end_at = _date("end_date", end)
    if start_at is None and end_at is None:
        end_at = now
    if start_at is None:
        assert end_at is not None
        start_at = end_at - WINDOW
    if end_at is None:
        end_at = start_at + WINDOW
    if end_at < start_at:
        raise Open311Error(400, "end_date is before start_date")
    if end_at - start_at > WINDOW:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return start_at, end_at


def _date(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise Open311Error(400, f"{name} is not an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- XML ------------------------------------------------------------------------------


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """``data`` (a list of flat dicts, or one dict) as GeoReport v2 XML: ``<root><item>
    <field>value</field>…</item>…</root>``; null is an empty element, booleans are
    ``true``/``false``, a list inside an item repeats its element (``<format>``)."""
    element = ET.Element(root)
    if item is None:
        _fill(element, data)
    else:
        for entry in data:
            _fill(ET.SubElement(element, item), entry)
    return (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        + ET.tostring(element, encoding="unicode").encode()
    )


def _fill(element: ET.Element, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(element, key)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif isinstance(value, list):
            singular = key[:-1] if key.endswith("s") else key
            for entry in value:
                if isinstance(entry, Mapping):
                    _fill(ET.SubElement(child, singular), entry)
                else:
                    ET.SubElement(child, singular).text = _text(entry)
        else:
            child.text = _text(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
