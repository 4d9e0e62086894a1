"""A backup's folder without servers: where backups go, which ones a listing, ``latest``
and ``--keep`` see, and what the integrity check refuses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lapor.ops import backup
from lapor.ops.backup import FileEntry, Manifest, StreamEntry


def test_the_target_is_a_folder_or_a_file_url_or_the_environment(monkeypatch):
    monkeypatch.delenv(backup.URL_ENV, raising=False)
    assert backup.target_path("/backups") == Path("/backups")
    assert backup.target_path("file:///mnt/lapor%20backups") == Path("/mnt/lapor backups")
    with pytest.raises(backup.BackupError, match="LAPOR_BACKUP_URL"):
        backup.target_path(None)
    with pytest.raises(backup.BackupError, match="only file://"):
        backup.target_path("s3://bucket/lapor")
    with pytest.raises(backup.BackupError, match="only file://"):
        backup.target_path("file://elsewhere/backups")
    monkeypatch.setenv(backup.URL_ENV, "file:///pvc")
    assert backup.target_path(None) == Path("/pvc")


def written(folder: Path, archive: bytes = b"archive bytes") -> Manifest:
    """A complete backup of one stream in ``folder``, as ``create`` leaves it."""
    folder.mkdir(parents=True)
    (folder / "X_EVENTS.s2").write_bytes(archive)
    (folder / "X_EVENTS.json").write_bytes(b"{}")
    entry = StreamEntry(
        role="events",
        stream="X_EVENTS",
        messages=3,
        first_seq=1,
        last_seq=3,
        bytes=300,
        consumers=1,
        deny_delete=True,
        archive=FileEntry("X_EVENTS.s2", len(archive), hashlib.sha256(archive).hexdigest()),
        meta=FileEntry("X_EVENTS.json", 2, hashlib.sha256(b"{}").hexdigest()),
    )
    manifest = Manifest(folder.name, "x", "2.15.1", "then", "then", [entry])
    data = manifest.to_bytes()
    (folder / backup.MANIFEST).write_bytes(data)
    (folder / backup.MANIFEST_SUM).write_text(
        hashlib.sha256(data).hexdigest() + "  manifest.json\n"
    )
    return manifest


def test_listing_latest_and_keep_see_complete_backups_only(tmp_path):
    for name in ("20261201T020000Z", "20261202T020000Z", "20261202T020000Z-1"):
        written(tmp_path / name)
    (tmp_path / "20261203T020000Z.partial").mkdir()  # a run that did not finish
    (tmp_path / "lost+found").mkdir()  # the volume's own
    ids = [b for b, _ in backup.complete_backups(tmp_path)]
    assert ids == ["20261201T020000Z", "20261202T020000Z", "20261202T020000Z-1"]
    assert backup.find_backup(tmp_path, "latest") == tmp_path / "20261202T020000Z-1"

    assert backup.prune(tmp_path, keep=2) == ["20261201T020000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20261202T020000Z",
        "20261202T020000Z-1",
        "20261203T020000Z.partial",
        "lost+found",
    ]
    with pytest.raises(backup.BackupError):
        backup.prune(tmp_path, keep=0)


def test_a_backup_is_read_only_when_every_sum_matches(tmp_path):
    folder = tmp_path / "20261201T020000Z"
    manifest = written(folder)
    assert backup.verify_backup(folder) == manifest

    (folder / "X_EVENTS.s2").write_bytes(b"archive bytez")
    with pytest.raises(backup.BackupCorrupt, match=r"X_EVENTS\.s2: SHA-256"):
        backup.verify_backup(folder)
    (folder / "X_EVENTS.s2").write_bytes(b"archive")
    with pytest.raises(backup.BackupCorrupt, match=r"X_EVENTS\.s2: 7 bytes"):
        backup.verify_backup(folder)
    (folder / "X_EVENTS.s2").unlink()
    with pytest.raises(backup.BackupCorrupt, match=r"X_EVENTS\.s2"):
        backup.verify_backup(folder)

    other = tmp_path / "20261202T020000Z"
    written(other)
    text = (other / backup.MANIFEST).read_text().replace('"last_seq": 3', '"last_seq": 4')
    (other / backup.MANIFEST).write_text(text)
    with pytest.raises(backup.BackupCorrupt, match=r"does not match manifest\.json\.sha256"):
        backup.verify_backup(other)
