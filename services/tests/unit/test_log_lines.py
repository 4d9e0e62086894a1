"""Every line a service logs is whole: threads logging at once never share a line."""

import json
import logging
import sys
import threading
import time

import pytest
import structlog

from lapor.services.logging import configure_logging


class SlowStandardError:
    """A standard error whose every write gives other threads their turn first, as a real
    one does whenever a write reaches the operating system: a line written in two parts
    (its text, then its newline) then gets another thread's line in between."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        time.sleep(0.0001)
        with self._lock:
            self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_structlog_and_library_loggers_in_threads_write_whole_json_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A service's own lines (structlog) and a library's (the standard library's logging,
    # e.g. the trace exporter's HTTP client in its thread) go to the same standard error.
    stderr = SlowStandardError()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging("DEBUG", "json")
    own, library = structlog.get_logger("lapor.test"), logging.getLogger("urllib3.test")

    def service() -> None:
        for i in range(300):
            own.info("complaint routed", n=i)

    def exporter() -> None:
        for i in range(300):
            library.debug("Starting new HTTP connection (%d): 127.0.0.1", i)

    threads = [threading.Thread(target=service), threading.Thread(target=exporter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = "".join(stderr.parts).splitlines()
    events = [json.loads(line)["event"] for line in lines]  # one whole object per line
    assert len(lines) == 600
    assert events.count("complaint routed") == 300
