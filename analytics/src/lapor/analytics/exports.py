"""Exports of the metrics: the figures of ``GET /metrics`` as a table, one row per group.

``GET /exports/metrics.csv`` and ``GET /exports/metrics.ndjson`` take the parameters of
``GET /metrics`` (``by``, ``opd``, ``from``, ``to``, ``as_of``). The first row is the
whole selection (group ``*``), then one row per group. Nested figures are flattened with
underscores (``working_days_to_finish_median``, ``ratings_distribution_5``), so the CSV
has one column per figure and the NDJSON one key per column, in the same order.

The response says which log it counted: ``Lapor-Log-Sequence`` (the figures include the
log up to that sequence) and ``Lapor-Evaluated-At`` (the instant deadlines were judged
at). Figures are aggregates: nothing about a single reporter or confidential content. No
cell is text a citizen wrote (group keys are codes, OPD names come from the registry), so
none can smuggle a spreadsheet formula in.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from lapor.analytics.api import (
    LOG_UNAVAILABLE,
    Asked,
    Figures,
    MetricsReport,
    Rt,
    Rules,
    compute,
)

exports_router = APIRouter(prefix="/exports", tags=["exports"])

ALL = "*"
"""The group of the first row: everything the filters selected."""


def rows(report: MetricsReport) -> Iterator[dict[str, Any]]:
    """The overall row, then one per group, each flattened in the order of ``columns``."""
    yield {"group": ALL, "name": None, **flatten(report.overall)}
    for group in report.groups:
        yield {"group": group.key, "name": group.name, **flatten(group)}


def flatten(figures: Figures) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Figures.model_fields:
        _put(out, name, getattr(figures, name))
    return out


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _put(out, f"{name}_{field}", getattr(value, field))
    elif isinstance(value, dict):
        for key in sorted(value):
            _put(out, f"{name}_{key}", value[key])
    else:
        out[name] = value


def columns(table: list[dict[str, Any]]) -> list[str]:
    """The column names in order: those of the rows, first seen first."""
    return list(dict.fromkeys(name for row in table for name in row))


def as_csv(report: MetricsReport) -> bytes:
    table = list(rows(report))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(table), lineterminator="\r\n")
    writer.writeheader()
    for row in table:
        writer.writerow(row)  # None -> empty
    return buffer.getvalue().encode()


def as_ndjson(report: MetricsReport) -> bytes:
    return "".join(json.dumps(row, default=str) + "\n" for row in rows(report)).encode()


def _response(report: MetricsReport, body: bytes, media_type: str, extension: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="metrics.{extension}"',
            "Lapor-Log-Sequence": str(report.log_sequence),
            "Lapor-Evaluated-At": report.evaluated_at.isoformat(),
        },
    )


@exports_router.get(
    "/metrics.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **LOG_UNAVAILABLE},
)
async def export_metrics_csv(rt: Rt, rules: Rules, q: Asked) -> Response:
    """The metrics as CSV: a header, the overall row (group ``*``), one row per group."""
    report = await compute(rt, rules, q)
    return _response(report, as_csv(report), "text/csv; charset=utf-8", "csv")


@exports_router.get(
    "/metrics.ndjson",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}, **LOG_UNAVAILABLE},
)
async def export_metrics_ndjson(rt: Rt, rules: Rules, q: Asked) -> Response:
    """The metrics as NDJSON: one JSON object a line, the keys of the CSV's columns."""
    report = await compute(rt, rules, q)
    return _response(report, as_ndjson(report), "application/x-ndjson", "ndjson")
