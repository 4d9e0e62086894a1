"""Open311 GeoReport v2 in the platform's words: pure functions, no I/O.

* **Services** are the routing table's categories (``RoutingTable.load()``): one per
  category, named in words, grouped under the unit that owns it (a category held by
  several sub-district offices is grouped under all of them, one name after the other),
  plus ``umum`` (general) for a report without a category, which the router places by its
  words (No Wrong Door).
* **Requests** are complaints as the tracker's public listing shows them: the LAPOR!
  status becomes ``open`` or ``closed`` (``closed``: Selesai and Arsip), with the status
  in words in ``status_notes``; the unit is ``agency_responsible``; the current deadline
  is ``expected_datetime``; the deadline policy in words is ``service_notice``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.tracking import ALPHABET, PATTERN, normalise

GENERAL = "umum"
"""The service for a report of no particular category: the router decides by its words."""

WINDOW = timedelta(days=90)
"""The default and the widest span of ``start_date`` .. ``end_date``."""

MAX_RESULTS = 1000
"""The most requests one GET requests answers (the newest first)."""

CLOSED = frozenset({"closed", "archived"})
"""LAPOR! statuses that are Open311 ``closed``: finished (Selesai) and archived (Arsip)."""

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


def in_words(code: str) -> str:
    """``air_minum`` as ``Air minum``; acronyms such as ``ktp`` in capitals."""
    words = code.replace("_", " ").strip()
    if len(words) <= 4 and " " not in words:
        return words.upper()
    return words[:1].upper() + words[1:]


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
        services[category] = ServiceType(
            code=category,
            name=in_words(category),
            group=group,
            keywords=keywords,
            description=f"{in_words(category)}: handled by {where}.",
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


def as_request(
    summary: Mapping[str, Any],
    services: Mapping[str, ServiceType],
    notice: str,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """A tracker listing row (``ComplaintSummary``) as an Open311 service request.

    The tracker shows the public neither the body nor the place of a complaint, so
    ``description`` is its title and ``address``, ``lat`` and ``long`` are null; the
    reporter is never named (nor is anyone else)."""
    status = summary["status"]
    code = summary.get("category") or GENERAL
    service = services.get(code)
    closed = is_closed(status)
    return {
        "service_request_id": summary["tracking_id"],
        "status": "closed" if closed else "open",
        "status_notes": status_notes(status, summary.get("status_label")),
        "service_name": service.name if service else in_words(code),
        "service_code": code,
        "description": summary.get("title"),
        "agency_responsible": summary.get("opd_name"),
        "service_notice": notice,
        "requested_datetime": timestamp(summary["received_at"]),
        "updated_datetime": timestamp(updated_at),
        "expected_datetime": None if closed else timestamp(summary.get("due_at")),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
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
