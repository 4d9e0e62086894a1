"""Open311 without servers: keys, the command, IDs, date windows, statuses, XML."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest
from defusedxml import ElementTree

from lapor.open311 import commands
from lapor.open311.domain import (
    Open311Error,
    date_window,
    is_closed,
    preceding_id,
    status_notes,
    to_xml,
)
from lapor.open311.keys import KeyStore
from lapor.services.settings import Settings


def test_keys_are_stored_hashed_checked_and_revoked(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    record, key = store.add("Aplikasi Warga")
    assert key not in (tmp_path / "keys.json").read_text()
    assert store.check(key) and not store.check(key + "x") and not store.check(None)
    other = KeyStore(tmp_path / "keys.json")  # a second reader (the service) sees changes
    assert other.check(key)
    store.revoke(record.id)
    assert not other.check(key)
    with pytest.raises(ValueError):
        store.revoke(record.id)
    with pytest.raises(ValueError):
        store.revoke("nope")


def test_the_command_adds_lists_and_revokes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAPOR_OPEN311_KEYS_FILE", str(tmp_path / "k.json"))
    settings = Settings(data_dir=tmp_path)
    assert commands.run(settings, argparse.Namespace(action="add", name="Warga")) == 0
    key = capsys.readouterr().out.strip()
    assert KeyStore(tmp_path / "k.json").check(key)
    assert commands.run(settings, argparse.Namespace(action="list")) == 0
    line = capsys.readouterr().out.strip()
    assert "Warga" in line and "active" in line
    key_id = line.split()[0]
    assert commands.run(settings, argparse.Namespace(action="revoke", id=key_id)) == 0
    assert not KeyStore(tmp_path / "k.json").check(key)
    assert commands.run(settings, argparse.Namespace(action="revoke", id=key_id)) == 2


def test_preceding_tracking_id():
    assert preceding_id("7K3MQ-9X2AB") == "7K3MQ-9X2AA"
    assert preceding_id("7K3MQ-9X210") == "7K3MQ-9X20Z"
    assert preceding_id("10000-00000") == "0ZZZZ-ZZZZZ"
    assert preceding_id("00000-00000") is None


def test_date_window_defaults_to_90_days_and_refuses_more():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    start, end = date_window(None, None, now)
    assert end == now and (end - start).days == 90
    start, end = date_window("2026-01-01", None, now)
    assert (end - start).days == 90 and start.tzinfo is not None
    for bad in (("2026-01-01", "2026-06-01"), ("2026-02-01", "2026-01-01"), ("yesterday", None)):
        with pytest.raises(Open311Error) as e:
            date_window(*bad, now)
        assert e.value.code == 400


def test_statuses():
    assert is_closed("closed") and is_closed("archived")
    assert not any(is_closed(s) for s in ("received", "disposed", "in_progress", "on_hold"))
    assert status_notes("in_progress", "Proses") == "Proses: the unit is working on it"


def test_xml_has_the_open311_shape():
    text = to_xml("errors", "error", [{"code": 403, "description": "no <key> & no entry"}])
    root = ElementTree.fromstring(text)
    assert root.tag == "errors"
    assert root.find("error/code").text == "403"
    assert root.find("error/description").text == "no <key> & no entry"
    nested = ElementTree.fromstring(to_xml("discovery", None, {"formats": ["a", "b"], "x": None}))
    assert [f.text for f in nested.find("formats")] == ["a", "b"]
    assert nested.find("x").text is None
