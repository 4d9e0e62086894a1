"""Open311 without servers: keys, the command, IDs, date windows, statuses, XML."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest
from defusedxml import ElementTree

from lapor.open311 import commands
from lapor.open311.domain import (
    LAPOR_STATUSES,
    Open311Error,
    address,
    as_request,
    category_filter,
    date_window,
    is_closed,
    preceding_id,
    status_notes,
    to_xml,
)
from lapor.open311.keys import KeyStore
from lapor.services.settings import Settings
from lapor.shared.lifecycle import Status


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


def test_open_and_closed_cover_every_lapor_status_once():
    assert set(LAPOR_STATUSES["closed"]) == {"closed", "archived"}
    assert sorted(LAPOR_STATUSES["open"] + LAPOR_STATUSES["closed"]) == sorted(Status)


def test_service_codes_as_the_trackers_category_filter():
    assert category_filter({"jalan", "umum", "sampah"}) == ["", "jalan", "sampah"]
    assert category_filter(set()) == []


def test_a_request_carries_the_text_and_place_never_more():
    row = {
        "tracking_id": "7K3MQ-9X2AB",
        "status": "in_progress",
        "status_label": "Proses",
        "category": None,
        "title": "Jalan berlubang",
        "body": "Lubang besar di depan pasar, sudah dua minggu.",
        "opd_name": "Dinas PUPR",
        "received_at": "2026-01-10T01:00:00+00:00",
        "updated_at": "2026-01-11T01:00:00+00:00",
        "due_at": "2026-01-15T09:00:00+00:00",
        "location": {
            "address": "Jl. Tanjungpura 5",
            "kelurahan": "Benua Melayu Darat",
            "kecamatan": "Pontianak Selatan",
            "lat": -0.03,
            "lon": 109.34,
        },
    }
    request = as_request(row, {}, "notice")
    assert request["description"] == row["body"]
    assert request["address"] == (
        "Jl. Tanjungpura 5, Kelurahan Benua Melayu Darat, Kecamatan Pontianak Selatan"
    )
    assert (request["lat"], request["long"]) == (-0.03, 109.34)
    assert request["service_code"] == "umum" and request["status"] == "open"
    assert request["updated_datetime"] == "2026-01-11T01:00:00+00:00"
    # A row projected before the tracker kept the text: its title; no place: nulls.
    bare = as_request({**row, "body": None, "location": None}, {}, "notice")
    assert bare["description"] == "Jalan berlubang"
    assert bare["address"] is bare["lat"] is bare["long"] is None
    assert address({"address": None, "kecamatan": None}) is None


def test_xml_has_the_open311_shape():
    text = to_xml("errors", "error", [{"code": 403, "description": "no <key> & no entry"}])
    root = ElementTree.fromstring(text)
    assert root.tag == "errors"
    assert root.find("error/code").text == "403"
    assert root.find("error/description").text == "no <key> & no entry"
    nested = ElementTree.fromstring(to_xml("discovery", None, {"formats": ["a", "b"], "x": None}))
    assert [f.text for f in nested.find("formats")] == ["a", "b"]
    assert nested.find("x").text is None
