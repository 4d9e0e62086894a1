"""The status labels: what the README promises is what the code shows, and the public is
never told a report is finished when it is not."""

from __future__ import annotations

from pathlib import Path

from lapor.tracker.domain import AGENCY_LABEL, PUBLIC_LABEL, Status

README = Path(__file__).parents[3] / "README.md"
HEADER = "| status | admin and unit label | public label |"


def readme_labels() -> dict[Status, tuple[str, str]]:
    """The README's label table: status -> (admin and unit label, public label)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # past the header and its | --- | row
    table: dict[Status, tuple[str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        status, agency, public = (cell.strip() for cell in line.strip("|").split("|"))
        table[Status(status.strip("`"))] = (agency, public)
    return table


def test_the_readme_table_is_the_code() -> None:
    assert readme_labels() == {s: (AGENCY_LABEL[s], PUBLIC_LABEL[s]) for s in Status}


def test_the_normal_path_uses_the_four_public_statuses() -> None:
    normal = [Status.RECEIVED, Status.DISPOSED, Status.IN_PROGRESS, Status.ANSWERED]
    assert [PUBLIC_LABEL[s] for s in (*normal, Status.CLOSED)] == [
        "Belum Terverifikasi",
        "Belum Ditindaklanjuti",
        "Proses",
        "Proses",
        "Selesai",
    ]


def test_only_a_closed_report_is_finished_to_the_public() -> None:
    finished = {s for s in Status if PUBLIC_LABEL[s] == "Selesai"}
    assert finished == {Status.CLOSED}
    assert PUBLIC_LABEL[Status.ON_HOLD] != PUBLIC_LABEL[Status.IN_PROGRESS]
