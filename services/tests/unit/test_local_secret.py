"""A local system's signing secret: made once, whole, readable by its owner alone."""

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import SecretStr

from lapor.services.cli import with_local_secret
from lapor.services.settings import Settings


def test_commands_starting_at_once_agree_on_one_whole_secret_only_its_owner_reads(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", auth_secret=None)
    with ThreadPoolExecutor(8) as pool:
        secrets = {
            s.auth_secret.get_secret_value()
            for s in pool.map(lambda _: with_local_secret(settings), range(32))
        }
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    path = tmp_path / "data" / "auth_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["auth_secret"], "nothing left beside it"


def test_a_given_secret_is_kept_and_nothing_is_written(tmp_path: Path) -> None:
    given = Settings(data_dir=tmp_path, auth_secret=SecretStr("given-" * 8))
    assert with_local_secret(given).auth_secret.get_secret_value() == "given-" * 8
    assert not list(tmp_path.iterdir())
