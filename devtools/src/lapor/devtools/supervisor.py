"""Keeping a local system's processes alive: what ``lapor run`` and the chaos tests use.

A ``Supervised`` child is a command with its environment, a readiness check and a restart
policy. A ``Supervisor`` starts children in order (each ready before the next starts),
restarts one that dies after a delay that doubles while it keeps dying, prints a line
saying what it restarted and why, keeps the children's pids in a file (so that a chaos
test knows whom to kill) and stops them in reverse order.

Each child runs in a process group of its own: Ctrl-C in a terminal reaches only the
supervisor, which then stops the services before the servers they need, instead of every
process getting the signal at once (and the supervisor restarting them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lapor.devtools.files import write_whole

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before starting a dead child again: ``first_delay``, doubling
    with each death up to ``max_delay``; a child that stayed up ``stable_after`` seconds
    starts again from ``first_delay`` (it was healthy; this is a new failure)."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    stable_after: float = 10.0

    def delay(self, failures: int) -> float:
        return min(self.first_delay * 2 ** max(failures - 1, 0), self.max_delay)


@dataclass(frozen=True)
class Supervised:
    """One child process: how to start it, how to tell that it is ready, how to stop it."""

    name: str
    command: Sequence[str]
    ready: Callable[[], bool]
    env: Mapping[str, str] | None = None
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    output: Path | None = None
    """stdout and stderr are appended to this file; ``None``: they are the supervisor's."""
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    def spawn(self) -> subprocess.Popen:
        out = self.output.open("ab") if self.output is not None else None
        try:
            return subprocess.Popen(
                list(self.command),
                env=dict(self.env) if self.env is not None else None,
                user=self.user,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                process_group=0,
            )
        finally:
            if out is not None:
                out.close()  # the child holds its own descriptor


def describe_exit(code: int) -> str:
    """``-9`` -> ``killed by SIGKILL``; ``3`` -> ``exited with code 3``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def stop_process(proc: subprocess.Popen, stop_signal: int, timeout: float) -> None:
    """Ask a child to stop; kill its whole process group if it has not within ``timeout``
    (a postmaster or a multi-worker server leaves children behind otherwise)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(stop_signal)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_ready(
    child: Supervised,
    proc: subprocess.Popen,
    timeout: float | None = None,
    stopping: threading.Event | None = None,
) -> bool:
    """Poll ``child.ready()`` until it holds (``True``), or the process exits, the
    supervisor stops or ``timeout`` passes (``False``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while proc.poll() is None and not (stopping is not None and stopping.is_set()):
        if _probe(child):
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return False


def _probe(child: Supervised) -> bool:
    try:
        return bool(child.ready())
    except Exception:  # a probe that fails means "not ready", whatever the reason
        return False


@contextlib.contextmanager
def running_once(child: Supervised, timeout: float = 30.0) -> Iterator[subprocess.Popen]:
    """Run ``child`` without supervision until the block ends (tests stop and start a
    server at will with it)."""
    proc = child.spawn()
    try:
        _await_first_ready(child, proc, timeout)
        yield proc
    finally:
        stop_process(proc, child.stop_signal, child.stop_timeout)


def _await_first_ready(child: Supervised, proc: subprocess.Popen, timeout: float) -> None:
    if wait_ready(child, proc, timeout):
        return
    if proc.poll() is not None:
        raise RuntimeError(f"{child.name} {describe_exit(proc.returncode)} during start-up")
    stop_process(proc, child.stop_signal, child.stop_timeout)
    raise TimeoutError(f"{child.name} not ready after {timeout:.0f}s")


class _Keeper:
    """One child under supervision: a thread waits for it to die and starts it again."""

    def __init__(self, child: Supervised, proc: subprocess.Popen, supervisor: Supervisor):
        self.child = child
        self.proc = proc
        self.started = time.monotonic()
        self.failures = 0
        self.restarts = 0
        self.lock = threading.Lock()
        self._supervisor = supervisor
        self._thread = threading.Thread(target=self._watch, name=f"keeper {child.name}")
        self._thread.daemon = True
        self._thread.start()

    def _watch(self) -> None:
        stopping = self._supervisor.stopping
        while True:
            code = self.proc.wait()
            if stopping.is_set():
                return
            died = time.monotonic()
            uptime = died - self.started
            self.failures = 1 if uptime >= self.child.policy.stable_after else self.failures + 1
            delay = self.child.policy.delay(self.failures)
            self._supervisor.say(
                f"{self.child.name} (pid {self.proc.pid}) {describe_exit(code)} after "
                f"{uptime:.1f}s up; restarting in {delay:.1f}s"
            )
            if stopping.wait(delay) or not self._respawn():
                return
            if wait_ready(self.child, self.proc, stopping=stopping):
                self._supervisor.say(
                    f"{self.child.name} restarted (pid {self.proc.pid}), ready "
                    f"{time.monotonic() - died:.1f}s after it died"
                )

    def _respawn(self) -> bool:
        with self.lock:
            if self._supervisor.stopping.is_set():
                return False
            try:
                self.proc = self.child.spawn()
            except OSError as e:  # e.g. the binary is gone: say so, and stop trying
                self._supervisor.say(f"{self.child.name} cannot be started again: {e}")
                return False
            self.started = time.monotonic()
            self.restarts += 1
        self._supervisor.save_pids()
        return True

    def stop(self) -> None:
        with self.lock:
            stop_process(self.proc, self.child.stop_signal, self.child.stop_timeout)
        self._thread.join(timeout=self.child.stop_timeout)


class Supervisor:
    """Starts children in order and keeps them running until ``stop`` (or the end of a
    ``with`` block), which stops them in reverse order.

    ``pid_file``: a JSON object ``{name: pid}``, rewritten whenever a child (re)starts.
    ``say``: where the supervisor's lines go (default: printed).
    """

    def __init__(
        self, pid_file: Path | None = None, say: Callable[[str], None] | None = None
    ) -> None:
        self.pid_file = pid_file
        self.stopping = threading.Event()
        self._keepers: list[_Keeper] = []
        self._say = say or _print
        self._pid_lock = threading.Lock()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def say(self, message: str) -> None:
        self._say(f"[supervisor] {message}")

    def start(self, child: Supervised, timeout: float = 60.0) -> subprocess.Popen:
        """Start ``child``, wait until it is ready, then keep it running. A child that
        dies before it was ever ready is an error (a port in use, a bad command), not
        something to retry for ever."""
        if self.stopping.is_set():
            raise RuntimeError("the supervisor is stopping")
        proc = child.spawn()
        _await_first_ready(child, proc, timeout)
        self._keepers.append(_Keeper(child, proc, self))
        self.save_pids()
        return proc

    def pids(self) -> dict[str, int]:
        return {k.child.name: k.proc.pid for k in self._keepers}

    def restarts(self) -> dict[str, int]:
        return {k.child.name: k.restarts for k in self._keepers}

    def save_pids(self) -> None:
        if self.pid_file is None:
            return
        with self._pid_lock:
            write_whole(self.pid_file, json.dumps(self.pids()))

    def stop(self) -> None:
        """Stop every child, the last started first; no restarts from now on."""
        self.stopping.set()
        for keeper in reversed(self._keepers):
            keeper.stop()
        self._keepers.clear()
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


def _print(message: str) -> None:
    print(message, flush=True)
