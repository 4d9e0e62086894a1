"""Operations commands find the local system ``lapor run`` is running on their data folder
(its ``run.json``) instead of failing on the folder's lock or starting servers of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lapor.devtools.infra import RUN_FILE, DataDirInUse, exclusive, infrastructure
from lapor.services.settings import Settings

RUNNING = {"nats_url": "nats://127.0.0.1:4999", "database_url": "postgresql://x@/db?host=/s"}


def test_a_command_uses_the_running_local_system(tmp_path: Path) -> None:
    (tmp_path / RUN_FILE).write_text(json.dumps({**RUNNING, "services": {}}))
    settings = Settings(data_dir=tmp_path, infra="embedded")
    with exclusive(tmp_path), infrastructure(settings) as infra:  # as if lapor run held it
        assert (infra.nats_url, infra.database_url) == tuple(RUNNING.values())
        assert infra.kind == "running"


def test_a_locked_folder_without_a_running_system_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, infra="embedded")
    with exclusive(tmp_path), pytest.raises(DataDirInUse), infrastructure(settings):
        pass
