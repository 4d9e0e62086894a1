"""A file another process polls while it is written is never seen empty or in part."""

import json
import threading
from pathlib import Path

from lapor.devtools.files import write_whole


def test_a_reader_polling_while_it_is_rewritten_sees_only_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_whole(path, json.dumps({"n": 0}))
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not done.is_set():
            seen.append(json.loads(path.read_text())["n"])  # raises on an empty or half file

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(1, 2000):
            write_whole(path, json.dumps({"n": n, "padding": "x" * 4096}))
    finally:
        done.set()
        reader.join()
    assert json.loads(path.read_text())["n"] == 1999
    assert seen == sorted(seen), "a reader never goes back to an older file"
    assert not list(tmp_path.glob("*.partial")), "nothing is left beside it"
