"""Files other processes read while they are being written."""

from __future__ import annotations

from pathlib import Path


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never
    an empty or half-written one: the text goes to a file beside it, which then replaces
    it (a rename within one directory is atomic)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
