"""Partitions by complaint: a complaint's share is stable and read from the subject; only
projections disjoint by complaint are split; the default number follows the CPUs the
process may use, its container's quota included."""

from __future__ import annotations

import os
from pathlib import Path

from lapor.ops.partitions import (
    available_cpus,
    default_partitions,
    in_share,
    partitionable,
    share_of,
)
from lapor.ops.replay import installed_projections
from lapor.shared.subjects import Subjects
from lapor.shared.tracking import new_tracking_id


def test_a_complaint_has_one_share_read_from_its_subject():
    subjects = Subjects("lapor")
    ids = [new_tracking_id() for _ in range(300)]
    shares = [share_of(cid, 3) for cid in ids]
    assert set(shares) == {0, 1, 2}  # spread over all
    assert shares == [share_of(cid, 3) for cid in ids]  # stable
    for cid, share in zip(ids, shares, strict=True):
        subject = subjects.complaint(cid, "complaint.received")
        assert [in_share(subjects, i, 3)(subject) for i in range(3)] == [
            i == share for i in range(3)
        ]


def test_only_projections_disjoint_by_complaint_are_split():
    installed = installed_projections()
    assert {n for n, p in installed.items() if partitionable(p)} == {
        "tracker.status",
        "analytics.facts",
    }


def test_the_default_follows_the_cpu_quota(tmp_path: Path):
    mine = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == mine  # no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == mine
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: one process
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    assert 1 <= default_partitions() <= 16
