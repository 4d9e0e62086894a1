"""The API contract: whatever a client sends, intake, tracker and analytics answer with a
status their OpenAPI documents, in the content type and body shape it documents, and never
with a 5xx.

Schemathesis generates requests from each service's own ``/openapi.json``, valid ones and
invalid ones, for every operation: anonymously and with an admin token (and an officer's
where a unit's routes are), and, where a path names a complaint, also for a complaint that
exists (so actions reach their 202 and 409) and for a well-formed ID that does not (404).
The apps run in-process (ASGI) on the suite's real NATS and PostgreSQL. The run is bounded:
a few examples per case, derandomized (the same requests every run), no shrinking (a
failure is reported as found, with a curl command that reproduces it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as examples
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lapor.analytics.app import create_app as analytics_app
from lapor.devtools.testing import as_reporter, bearer, serving
from lapor.intake.app import create_app as intake_app
from lapor.services.settings import Settings
from lapor.shared.tracking import new_tracking_id
from lapor.tracker.app import create_app as tracker_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

BOUNDED = examples(
    max_examples=5,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking
    suppress_health_check=list(HealthCheck),
)

SERVICES: dict[str, Callable[[Settings], FastAPI]] = {
    "intake": intake_app,
    "tracker": tracker_app,
    "analytics": analytics_app,
}


@pytest.fixture
async def complaint(settings: Settings) -> str:
    """A complaint in the log (the tracker's read model picks it up when it starts)."""
    async with serving(intake_app(settings)) as intake:
        r = await intake.post(
            "/complaints",
            json={
                "title": "Jalan berlubang",
                "body": "Lubang besar di depan pasar",
                "anonymous": True,
            },
        )
    assert r.status_code == 202, r.text
    return r.json()["tracking_id"]


@contextmanager
def served(app: FastAPI) -> Iterator[schemathesis.BaseSchema]:
    """``app``'s schema, loaded from the running app; its lifespan (broker, pool) is
    started by schemathesis and stopped here, before the test's database goes away."""
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()


Variant = tuple[str, dict[str, str] | None, dict[str, str]]
"""A name, the headers sent, the path parameters fixed (the rest are generated)."""


def variants(operation: Any, settings: Settings, known: str) -> list[Variant]:
    admin = bearer(settings, "admin")
    found: list[Variant] = [("anonymous", None, {}), ("admin", admin, {})]
    if "{opd}" in operation.path or operation.path.startswith("/exports/complaints"):
        officer = bearer(settings, "agency", "dpupr")
        found.append(
            ("officer of dpupr", officer, {"opd": "dpupr"} if "{opd}" in operation.path else {})
        )
    if "{tracking_id}" in operation.path:
        owner = {**admin, **as_reporter(settings, known)}
        found += [
            ("admin+reporter, known complaint", owner, {"tracking_id": known}),
            ("admin, unknown complaint", admin, {"tracking_id": new_tracking_id()}),
        ]
    return found


def failures_of(operation: Any, mode: GenerationMode, variant: Variant) -> list[str]:
    name, headers, path = variant

    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None))
    def exercise(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        exercise()
    except Unsatisfiable:
        return []  # nothing to make invalid: an operation that takes no input
    except (Exception, BaseExceptionGroup) as e:  # the checks' failures, with a curl each
        return [f"{operation.label} ({mode.value}, {name}):\n{e}"]
    return []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_response_conforms_to_the_openapi(
    settings: Settings, complaint: str, service: str
) -> None:
    failures: list[str] = []
    with served(SERVICES[service](settings)) as schema:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for variant in variants(operation, settings, complaint):
                    failures += failures_of(operation, mode, variant)
    assert not failures, "\n\n".join(failures)
