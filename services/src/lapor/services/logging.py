"""structlog set-up: JSON lines in services, readable console output on a terminal.

Every line a service writes goes through the same processors and renderer, whoever
logged it: the services' own structlog loggers directly, and the standard library's
loggers (uvicorn's error and access logs, FastStream's, asyncio's, warnings) through one
root handler with structlog's ``ProcessorFormatter``. So ``LAPOR_LOG_FORMAT=json`` gives
one JSON object per line on standard error, each with ``event``, ``level``,
``timestamp``, ``logger`` (standard-library records), the request's or event's
``correlation_id`` and, inside a trace, ``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger


class _StandardError:
    """Writes each line to whatever ``sys.stderr`` is at that moment, not to the stream
    there was at set-up: a test runner swaps it per test and closes the old one (seen:
    later tests failing on a closed file)."""

    def msg(self, message: str) -> None:
        # One write per line: print() writes the text and its newline apart, and another
        # thread's line (a library's, through the root handler) landed between them, two
        # JSON objects on one line (seen in a service's log).
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StandardErrorHandler(logging.StreamHandler):
    """The root handler of the standard library's loggers: like ``_StandardError``, it
    writes to the ``sys.stderr`` of the moment."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it
        pass


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``trace_id`` and ``span_id`` of the current span, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def add_record_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Fields of a standard-library record: the ``extra`` a library gave (FastStream's
    subject and stream, say), and the parts of uvicorn's access line."""
    args = event_dict.pop("positional_args", None)
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is None:
        return event_dict
    for key, value in record.__dict__.items():
        if key not in _RECORD_FIELDS and not key.startswith("_"):
            event_dict.setdefault(key, value)
    access = record.name == "uvicorn.access" and isinstance(args, tuple)
    if access and len(args) == len(_ACCESS_FIELDS):
        event_dict.update(zip(_ACCESS_FIELDS, args, strict=True))
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelName(level.upper())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *args: _StandardError(),
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(numeric_level, shared, renderer)


def _route_standard_logging(level: int, shared: list[Processor], renderer: Processor) -> None:
    """One root handler renders every standard-library record like structlog's own lines;
    libraries' own handlers are taken away so that nothing is written twice or unformatted."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.add_logger_name,
            add_record_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
        pass_foreign_args=True,  # uvicorn's access line keeps its parts as arguments
    )
    handler = _StandardErrorHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StandardErrorHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # FastStream brings its own handler (coloured text on stdout): its lines go to the root
    # instead. uvicorn, given no log_config (``lapor serve``), adds none.
    for name in ("faststream", "faststream.access"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    # FastStream's per-message and lifecycle lines, and uvicorn's start-up lines, are noise
    # next to the services' own structured log (FastStream's per-message line costs ~30%
    # throughput): warnings and errors only, unless LAPOR_LOG_LEVEL=DEBUG.
    quiet = level if level <= logging.DEBUG else max(level, logging.WARNING)
    logging.getLogger("faststream").setLevel(quiet)
    logging.getLogger("uvicorn.error").setLevel(quiet)
    # One line per request, when uvicorn's access log is on (``lapor serve --access-log``;
    # uvicorn cuts the logger off otherwise).
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    logging.captureWarnings(True)
