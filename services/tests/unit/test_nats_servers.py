"""``NATS_URL`` names one server or, comma-separated, every node of a cluster; clients get
them as the list nats-py (and FastStream) accept."""

from __future__ import annotations

import pytest

from lapor.services.settings import Settings


def test_one_url_is_one_server():
    assert Settings(nats_url="nats://nats.lapor.svc:4222").nats_servers == [
        "nats://nats.lapor.svc:4222"
    ]


def test_a_cluster_is_every_node_in_order_without_blanks():
    url = " nats://n1:4222, nats://n2:4222 ,nats://n3:4222,"
    assert Settings(nats_url=url).nats_servers == [
        "nats://n1:4222",
        "nats://n2:4222",
        "nats://n3:4222",
    ]


def test_the_environment_variable_is_read_the_same_way(monkeypatch):
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:4222,nats://127.0.0.1:4223")
    assert Settings().nats_servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]


def test_no_url_is_refused():
    with pytest.raises(ValueError, match="NATS_URL"):
        _ = Settings(nats_url=None).nats_servers
