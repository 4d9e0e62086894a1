"""Operations commands use the deployment's servers when named, and otherwise the local
infrastructure of lapor-devtools, which the runtime image does not have."""

from __future__ import annotations

import pytest

from lapor.ops import reach
from lapor.services.settings import Settings

GIVEN = {"nats_url": "nats://nats.lapor.svc:4222", "database_url": "postgresql://db/lapor"}


def test_given_urls_are_used_as_they_are() -> None:
    settings = Settings(**GIVEN)
    with reach.deployment(settings) as reached:
        assert reached is settings


def test_without_urls_and_without_devtools_it_asks_for_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reach, "entry_points", lambda **selection: ())
    half_given = Settings(nats_url=GIVEN["nats_url"], database_url=None)
    with (
        pytest.raises(RuntimeError, match="set NATS_URL and DATABASE_URL"),
        reach.deployment(half_given),
    ):
        pass


def test_without_urls_the_local_infrastructure_of_devtools_is_used() -> None:
    found = reach.entry_points(group="lapor.infrastructure", name="local")
    assert [ep.value for ep in found] == ["lapor.devtools.infra:infrastructure"]
