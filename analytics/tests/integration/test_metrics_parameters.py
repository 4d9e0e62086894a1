"""The parameters of GET /metrics and its exports: a value out of range is a 422 naming it,
and the extremes that are in range are answered, never a 500."""

from __future__ import annotations

import httpx
import pytest

from lapor.analytics.app import create_app
from lapor.devtools.testing import serving
from lapor.services.settings import Settings

PATHS = ["/metrics", "/exports/metrics.csv", "/exports/metrics.ndjson"]

OUT_OF_RANGE = [
    ({"as_of": "0001-01-01T00:00:00+14:00"}, "as_of", "out of range"),  # year 0 in UTC
    ({"as_of": "9999-12-31T23:59:59-14:00"}, "as_of", "out of range"),  # year 10000
    ({"as_of": "0001-01-01T00:00:00Z"}, "as_of", "must not be before 1970-01-01T00:00:00+00:00"),
    ({"as_of": "2999-01-01T00:00:00+07:00"}, "as_of", "must be in the past"),
    ({"from": "0001-01-01"}, "from", "must not be before 1970-01-01"),
    ({"to": "1969-12-31"}, "to", "must not be before 1970-01-01"),
    (
        {"from": "2024-04-01", "to": "2024-03-31"},
        "to",
        "must not be before from (both days are included)",
    ),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("params", "field", "reason"), OUT_OF_RANGE)
async def test_a_parameter_out_of_range_is_a_422_naming_it(
    path: str, params: dict[str, str], field: str, reason: str
) -> None:
    # Refused before anything is read: no servers needed (the app's lifespan never runs).
    unconnected = Settings(nats_url="nats://127.0.0.1:1", database_url="postgresql://x/y")
    transport = httpx.ASGITransport(app=create_app(unconnected), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        r = await client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": "invalid request", "errors": [{"field": field, "reason": reason}]}


async def test_the_extremes_in_range_are_answered(settings: Settings) -> None:
    extremes = [
        {"as_of": "1970-01-01T00:00:00Z", "by": "month"},
        {"as_of": "1970-01-01T14:00:00+14:00", "from": "1970-01-01", "to": "9999-12-31"},
        {"from": "1970-01-01", "to": "9999-12-31", "by": "year"},
        {"from": "9999-12-31", "by": "quarter"},
    ]
    async with serving(create_app(settings)) as client:
        for params in extremes:
            for path in PATHS:
                r = await client.get(path, params=params)
                assert r.status_code == 200, (path, params, r.text)
