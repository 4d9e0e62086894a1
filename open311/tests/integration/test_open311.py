"""Open311 GeoReport v2 over intake, router and tracker (in process, real NATS and
PostgreSQL): every JSON answer validates against the published schemas
(``shared/conformance/open311``), every XML answer carries the same data as its JSON twin,
a POSTed request is routed and listed, a confidential complaint never appears, and a
wrong key is a 403 in Open311's error format."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from lapor.devtools.testing import bearer, eventually, serving
from lapor.intake.app import create_app as intake_app
from lapor.open311.app import Open311Settings
from lapor.open311.app import create_app as open311_app
from lapor.open311.keys import KeyStore
from lapor.router.app import create_app as router_app
from lapor.services.settings import Settings
from lapor.tracker.app import create_app as tracker_app

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = next(
    p
    for p in (
        ROOT / "shared" / "conformance" / "open311",
        ROOT.parent / "shared" / "conformance" / "open311",
    )
    if p.is_dir()
)
_contents = {
    p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json") if p.name != "swagger.json"
}
REGISTRY = Registry().with_resources(
    (name, Resource.from_contents(schema, default_specification=DRAFT4))
    for name, schema in _contents.items()
)


def validate(schema: str, instance: Any) -> None:
    Draft4Validator(_contents[schema], registry=REGISTRY).validate(instance)


def xml_data(text: bytes) -> Any:
    """An XML answer as lists (repeated children) and dicts of strings (None if empty)."""
    return _read(ElementTree.fromstring(text))


def _read(element: Any) -> Any:
    children = list(element)
    if not children:
        return element.text
    tags = [c.tag for c in children]
    if (len(children) > 1 and len(set(tags)) == 1) or element.tag in _LISTS:
        return [_read(c) for c in children]
    return {c.tag: _read(c) for c in children}


_LISTS = {"services", "service_requests", "errors", "endpoints", "formats", "attributes"}


def as_text(data: Any) -> Any:
    """JSON data as its XML twin reads: every scalar a string, null None, booleans
    true/false, an empty list None (an empty element)."""
    if isinstance(data, dict):
        return {k: as_text(v) for k, v in data.items()}
    if isinstance(data, list):
        return [as_text(v) for v in data] if data else None
    if data is None:
        return None
    if isinstance(data, bool):
        return "true" if data else "false"
    return str(data)


# --- the system -----------------------------------------------------------------------

KEY_NAME = "Aplikasi Warga"
V2 = "/open311/v2"


@contextlib.asynccontextmanager
async def system(settings: Settings, keys_file: Path):
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(serving(intake_app(settings)))
        await stack.enter_async_context(serving(router_app(settings)))
        tracker = await stack.enter_async_context(serving(tracker_app(settings)))
        app = open311_app(
            settings,
            own=Open311Settings(open311_keys_file=keys_file),
            intake=intake,
            tracker=tracker,
        )
        open311 = await stack.enter_async_context(serving(app))
        yield intake, tracker, open311


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "open311_keys.json"


@pytest.fixture
def api_key(keys_file: Path) -> str:
    _, key = KeyStore(keys_file).add(KEY_NAME)
    return key


async def both(client: httpx.AsyncClient, path: str, **params: Any) -> tuple[Any, Any]:
    """The JSON answer and its XML twin's data; both 200."""
    as_json = await client.get(f"{V2}/{path}.json", params=params)
    as_xml = await client.get(f"{V2}/{path}.xml", params=params)
    assert as_json.status_code == 200, as_json.text
    assert as_xml.status_code == 200, as_xml.text
    assert as_xml.headers["content-type"].startswith("text/xml")
    data = as_json.json()
    assert xml_data(as_xml.content) == as_text(data)
    return data, xml_data(as_xml.content)


async def test_services_discovery_and_definitions(settings, keys_file):
    async with system(settings, keys_file) as (_, _, open311):
        services, _ = await both(open311, "services")
        validate("services.json", services)
        codes = {s["service_code"]: s for s in services}
        assert {"jalan", "sampah", "umum"} <= codes.keys()
        road = codes["jalan"]
        assert road["type"] == "realtime" and road["metadata"] is False
        assert road["service_name"] == "Jalan"
        # Names from the category catalogue: Indonesian, with the English one described.
        assert road["description"].startswith("Jalan (Roads): handled by")
        assert codes["air_minum"]["service_name"] == "Air minum (PDAM)"
        assert "Pekerjaan Umum" in road["group"]
        assert road["keywords"]

        definition, _ = await both(open311, "services/jalan")
        validate("service-definition.json", definition)
        assert definition == {"service_code": "jalan", "attributes": []}

        discovery, _ = await both(open311, "discovery")
        assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"

        for fmt in ("json", "xml"):
            r = await open311.get(f"{V2}/services/no_such_thing.{fmt}")
            assert r.status_code == 404
        assert (await open311.get(f"{V2}/services/no_such_thing.json")).json()[0]["code"] == 404


async def test_a_posted_request_is_routed_listed_and_confidential_ones_never_are(
    settings, keys_file, api_key
):
    async with system(settings, keys_file) as (intake, tracker, open311):
        form = {
            "api_key": api_key,
            "service_code": "jalan",
            "description": "Jalan berlubang besar di depan Pasar Flamboyan, bahaya untuk motor.",
            "lat": "-0.0263",
            "long": "109.3425",
            "first_name": "Siti",
            "last_name": "Rahmawati",
            "email": "siti@example.org",
        }
        r = await open311.post(f"{V2}/requests.json", data=form)
        assert r.status_code == 201, r.text
        answer = r.json()
        request_id = answer[0]["service_request_id"]
        assert answer[0]["service_notice"]

        r = await open311.post(
            f"{V2}/requests.xml",
            data={**form, "lat": "", "long": "", "address_string": "Jl. Gajah Mada 12"},
        )
        assert r.status_code == 201, r.text
        second = xml_data(r.content)[0]["service_request_id"]

        secret = {
            "title": "Pungutan liar di kantor pelayanan",
            "body": "Petugas meminta uang tambahan untuk mengurus KTP, tolong ditindak.",
            "category": "ktp",
            "confidential": True,
        }
        hidden = (await intake.post("/complaints", json=secret)).json()["tracking_id"]

        async def routed():
            r = await open311.get(f"{V2}/requests/{request_id}.json")
            if r.status_code != 200:
                return None
            one = r.json()[0]
            return one if one["agency_responsible"] else None

        one = await eventually(routed)
        validate("requests.json", [one])
        validate("request.json", one)
        assert "Pekerjaan Umum" in one["agency_responsible"]
        assert one["service_code"] == "jalan" and one["status"] == "open"
        assert one["expected_datetime"] is not None
        assert "Belum Ditindaklanjuti" in one["status_notes"]
        assert "Siti" not in json.dumps(one) and "siti@" not in json.dumps(one)
        # The report's text and place, as LAPOR! publishes a report that is not confidential.
        assert one["description"] == form["description"]
        assert (one["lat"], one["long"]) == (-0.0263, 109.3425) and one["address"] is None
        assert one["updated_datetime"] >= one["requested_datetime"]

        # The confidential complaint reached the tracker: it is known, but never shown.
        async def known():
            return (await tracker.get(f"/complaints/{hidden}")).status_code == 200

        await eventually(known)
        await eventually(lambda: _listed(open311, second))

        listed, _ = await both(open311, "requests")
        validate("requests.json", listed)
        ids = [x["service_request_id"] for x in listed]
        assert request_id in ids and second in ids
        assert hidden not in ids
        by_address = next(x for x in listed if x["service_request_id"] == second)
        assert by_address["address"] == "Jl. Gajah Mada 12"
        assert by_address["lat"] is None and by_address["long"] is None
        assert "Pungutan" not in json.dumps(listed) and "KTP" not in json.dumps(listed)
        for path in (f"requests/{hidden}",):
            for fmt in ("json", "xml"):
                r = await open311.get(f"{V2}/{path}.{fmt}")
                assert r.status_code == 404
        byid, _ = await both(open311, "requests", service_request_id=f"{request_id},{hidden}")
        assert [x["service_request_id"] for x in byid] == [request_id]
        single, _ = await both(open311, f"requests/{request_id}")
        validate("requests.json", single)

        # Filters.
        opened, _ = await both(open311, "requests", status="open", service_code="jalan")
        assert request_id in [x["service_request_id"] for x in opened]
        closed, _ = await both(open311, "requests", status="closed")
        assert closed == []
        other, _ = await both(open311, "requests", service_code="sampah")
        assert other == []
        old, _ = await both(
            open311, "requests", start_date="2020-01-01T00:00:00+07:00", end_date="2020-03-01"
        )
        assert old == []
        r = await open311.get(
            f"{V2}/requests.json", params={"start_date": "2020-01-01", "end_date": "2021-01-01"}
        )
        assert r.status_code == 400 and r.json()[0]["code"] == 400
        r = await open311.get(f"{V2}/requests.json", params={"status": "pending"})
        assert r.status_code == 400

        token, _ = await both(open311, f"tokens/{request_id}")
        assert token == [{"token": request_id, "service_request_id": request_id}]


async def _listed(open311: httpx.AsyncClient, request_id: str) -> bool:
    r = await open311.get(f"{V2}/requests/{request_id}.json")
    return r.status_code == 200


async def test_wrong_key_is_403_and_bad_input_400(settings, keys_file, api_key):
    async with system(settings, keys_file) as (_, _, open311):
        good = {"service_code": "sampah", "address_string": "Jl. Merdeka", "description": "x" * 20}
        for key in (None, "o311_wrong", ""):
            form = good if key is None else {**good, "api_key": key}
            for fmt in ("json", "xml"):
                r = await open311.post(f"{V2}/requests.{fmt}", data=form)
                assert r.status_code == 403
                errors = r.json() if fmt == "json" else xml_data(r.content)
                assert errors[0]["code"] in (403, "403")
                assert errors[0]["description"]
        revoked, key = KeyStore(keys_file).add("gone")
        KeyStore(keys_file).revoke(revoked.id)
        r = await open311.post(f"{V2}/requests.json", data={**good, "api_key": key})
        assert r.status_code == 403

        bad = [
            {"address_string": "Jl. Merdeka"},  # no service_code
            {"service_code": "nope", "address_string": "Jl. Merdeka"},
            {"service_code": "sampah"},  # no location
            {"service_code": "sampah", "lat": "abc", "long": "1"},
            {"service_code": "sampah", "lat": "91", "long": "1"},
            {"service_code": "sampah", "address_string": "Jl. A", "email": "not-an-email"},
            {"service_code": "sampah", "address_string": "Jl. A", "description": "x" * 4001},
        ]
        for form in bad:
            r = await open311.post(f"{V2}/requests.json", data={**form, "api_key": api_key})
            assert r.status_code == 400, (form, r.text)
            assert r.json()[0]["code"] == 400
        r = await open311.get(f"{V2}/requests/NOT-AN-ID.json")
        assert r.status_code == 404 and r.json()[0]["code"] == 404
        r = await open311.get(f"{V2}/requests/00000-00001.xml")
        assert r.status_code == 404 and xml_data(r.content)[0]["code"] == "404"
        r = await open311.get(f"{V2}/tokens/00000-00001.json")
        assert r.status_code == 404


async def test_requests_are_answered_by_the_trackers_filters_across_pages(
    settings, keys_file, api_key, monkeypatch
):
    """service_code (several, and umum for no category), status open/closed and the date
    window are the tracker's filters; with pages of two, every match is still answered,
    newest first, and a confidential complaint that matches every filter never is."""
    from lapor.open311 import api

    monkeypatch.setattr(api, "PAGE", 2)
    async with system(settings, keys_file) as (intake, tracker, open311):
        asked: list[httpx.URL] = []

        async def record(request: httpx.Request) -> None:
            if request.url.path == "/complaints":
                asked.append(request.url)

        tracker.event_hooks["request"].append(record)
        plan = [
            ("jalan", False),
            ("jalan", False),
            ("jalan", False),
            ("sampah", False),
            (None, False),
            (None, False),
            ("jalan", True),
            (None, True),
        ]
        made: dict[str, tuple[str | None, bool]] = {}
        for i, (category, confidential) in enumerate(plan):
            complaint: dict[str, Any] = {
                "title": f"Laporan nomor {i}",
                "body": f"Isi laporan nomor {i}, mohon segera ditangani petugas.",
                "location": {"address": f"Jl. Tanjungpura {i}", "kecamatan": "Pontianak Kota"},
                "confidential": confidential,
            }
            if category:
                complaint["category"] = category
            r = await intake.post("/complaints", json=complaint)
            assert r.status_code == 202, r.text
            made[r.json()["tracking_id"]] = (category, confidential)

        async def all_known():
            for cid in made:
                if (await tracker.get(f"/complaints/{cid}")).status_code != 200:
                    return False
            return True

        await eventually(all_known)
        archived = next(cid for cid, (c, secret) in made.items() if c == "jalan" and not secret)
        r = await tracker.post(
            f"/complaints/{archived}/archive",
            json={"reason": "duplicate"},
            headers=bearer(settings, "admin"),
        )
        assert r.status_code == 202, r.text

        async def is_archived():
            return (await tracker.get(f"/complaints/{archived}")).json()["status"] == "archived"

        await eventually(is_archived)

        def expected(keep: Any) -> set[str]:
            return {cid for cid, (c, secret) in made.items() if not secret and keep(cid, c)}

        cases = [
            ({}, lambda cid, c: True),
            ({"service_code": "jalan"}, lambda cid, c: c == "jalan"),
            ({"service_code": "umum"}, lambda cid, c: c is None),
            ({"service_code": "sampah,umum"}, lambda cid, c: c != "jalan"),
            ({"status": "closed"}, lambda cid, c: cid == archived),
            (
                {"status": "open", "service_code": "jalan"},
                lambda cid, c: c == "jalan" and cid != archived,
            ),
        ]
        for params, keep in cases:
            asked.clear()
            data, _ = await both(open311, "requests", **params)
            validate("requests.json", data)
            ids = [x["service_request_id"] for x in data]
            assert set(ids) == expected(keep), params
            assert len(ids) == len(set(ids)), params
            stamps = [x["requested_datetime"] for x in data]
            assert stamps == sorted(stamps, reverse=True), params  # newest first
            # Asked of the tracker with its filters, page after page (two at a time).
            assert asked, params
            for url in asked:
                assert url.params["from"] and url.params["to"] and url.params["limit"] == "2"
            codes = params.get("service_code", "")
            want = sorted("" if c == "umum" else c for c in codes.split(",") if c)
            assert sorted(asked[0].params.get_list("category")) == want, params
            if params.get("status") == "closed":
                assert sorted(asked[0].params.get_list("status")) == ["archived", "closed"]
        for x in (await both(open311, "requests"))[0]:
            assert x["address"].startswith("Jl. Tanjungpura") and "Pontianak Kota" in x["address"]
            assert x["description"].startswith("Isi laporan nomor")

        # The window: nothing received in the future, nothing in a past quarter.
        soon = datetime.now(UTC) + timedelta(hours=1)
        later, _ = await both(open311, "requests", start_date=soon.isoformat())
        assert later == []
        r = await open311.get(
            f"{V2}/requests.json",
            params={"end_date": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
        )
        assert r.status_code == 200 and r.json() == []


async def test_a_request_posted_through_open311_shows_up_in_the_portal(
    settings, keys_file, api_key
):
    """What a GeoReport client posts is a report like any other: routed, and on the
    citizen's portal (its tracking page and the public list) with its text."""
    from lapor.analytics.app import create_app as analytics_app
    from lapor.portal.app import create_app as portal_app

    description = "Lampu jalan di Jalan Gajah Mada padam sejak seminggu, gelap sekali malam."
    async with contextlib.AsyncExitStack() as stack:
        intake, tracker, open311 = await stack.enter_async_context(system(settings, keys_file))
        analytics = await stack.enter_async_context(serving(analytics_app(settings)))
        app = portal_app(settings, intake=intake, tracker=tracker, analytics=analytics)
        portal = await stack.enter_async_context(serving(app))
        form = {
            "api_key": api_key,
            "service_code": "jalan",
            "description": description,
            "address_string": "Jl. Gajah Mada 12, Pontianak",
        }
        r = await open311.post(f"{V2}/requests.json", data=form)
        assert r.status_code == 201, r.text
        request_id = r.json()[0]["service_request_id"]

        async def routed() -> httpx.Response | None:
            page = await portal.get(f"/lacak/{request_id}")
            return page if page.status_code == 200 and "Dinas" in page.text else None

        page = await eventually(routed)
        assert description in page.text
        assert request_id in (await portal.get("/laporan")).text
