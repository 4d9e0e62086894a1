"""The supervisor with real child processes (a sleeping Python): what dies is started again
after a doubling delay, with a line saying why; what cannot start is an error; ``stop``
leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import psutil
import pytest

from lapor.devtools.supervisor import (
    RestartPolicy,
    Supervised,
    Supervisor,
    describe_exit,
)

FAST = RestartPolicy(first_delay=0.1, max_delay=0.4, stable_after=5)


def sleeper(name: str, policy: RestartPolicy = FAST) -> Supervised:
    return Supervised(
        name,
        [sys.executable, "-c", "import time; time.sleep(60)"],
        ready=lambda: True,
        policy=policy,
    )


def until(probe, within: float = 10.0):
    deadline = time.monotonic() + within
    while not (found := probe()):
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)
    return found


def test_a_killed_child_is_started_again_and_the_line_says_why(tmp_path):
    said: list[str] = []
    with Supervisor(tmp_path / "pids.json", say=said.append) as supervisor:
        first = supervisor.start(sleeper("worker")).pid
        assert json.loads((tmp_path / "pids.json").read_text()) == {"worker": first}

        os.kill(first, signal.SIGKILL)
        second = until(lambda: supervisor.pids()["worker"] != first and supervisor.pids()["worker"])
        assert psutil.pid_exists(second)
        # The file follows right after the restart (written once the child runs).
        until(lambda: json.loads((tmp_path / "pids.json").read_text()) == {"worker": second})
        until(lambda: any("restarted" in line for line in said))
    assert said[0].startswith(f"[supervisor] worker (pid {first}) killed by SIGKILL after ")
    assert said[0].endswith("restarting in 0.1s")
    assert not psutil.pid_exists(second)
    assert not (tmp_path / "pids.json").exists()


def test_the_delay_doubles_while_a_child_keeps_dying():
    said: list[str] = []
    with Supervisor(say=said.append) as supervisor:
        supervisor.start(sleeper("worker"))
        for _ in range(4):
            pid = supervisor.pids()["worker"]
            os.kill(pid, signal.SIGKILL)
            until(lambda pid=pid: supervisor.pids()["worker"] != pid)
    delays = [line.rsplit(" ", 1)[1] for line in said if "restarting in" in line]
    assert delays == ["0.1s", "0.2s", "0.4s", "0.4s"]


def test_a_child_that_dies_before_it_is_ready_is_an_error():
    failing = Supervised("broken", [sys.executable, "-c", "raise SystemExit(3)"], lambda: False)
    with Supervisor() as supervisor, pytest.raises(RuntimeError, match="exited with code 3"):
        supervisor.start(failing, timeout=10)


def test_stop_stops_the_last_started_first(tmp_path):
    log = tmp_path / "stopped"
    note = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(log)!r}, 'a').write(sys.argv[1] + '\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    with Supervisor() as supervisor:
        for name in ("server", "service"):
            ready = tmp_path / f"{name}.out"
            supervisor.start(
                Supervised(
                    name,
                    [sys.executable, "-c", note, name],
                    ready=lambda ready=ready: ready.exists() and "up" in ready.read_text(),
                    output=ready,
                )
            )
        pids = supervisor.pids().values()
    assert log.read_text().split() == ["service", "server"]
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_an_exit_is_described_by_its_signal_or_code():
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"
