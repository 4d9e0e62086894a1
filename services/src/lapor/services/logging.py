"""structlog set-up: JSON lines in services, readable console output on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog


class _StandardError:
    """Writes each line to whatever ``sys.stderr`` is at that moment, not to the stream
    there was at set-up: a test runner swaps it per test and closes the old one (seen:
    later tests failing on a closed file)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *args: _StandardError(),
        cache_logger_on_first_use=True,
    )
    # FastStream logs through the standard library; its per-message and lifecycle lines
    # are noise next to the services' own structured log.
    logging.getLogger("faststream").setLevel(logging.WARNING)
