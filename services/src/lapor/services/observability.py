"""Prometheus metrics of a service's read models, read at scrape time from the handlers
themselves (no second copy of their state to keep in step).

Served at ``/health/metrics`` (``/metrics`` is the analytics API's own path). Alert on
``lapor_projection_stopped == 1``: a read model is stopped in front of an event it cannot
apply, and what people see from it is behind the log until someone acts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from lapor.services.projections import ProjectionHandler

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]


class ProjectionCollector:
    def __init__(self, service: str, handlers: Sequence[ProjectionHandler]) -> None:
        self.service = service
        self.handlers = handlers

    def collect(self) -> Iterator[Metric]:
        labels = ["service", "projection"]
        checkpoint = GaugeMetricFamily(
            "lapor_projection_checkpoint", "Last log sequence the read model applied", labels=labels
        )
        stopped = GaugeMetricFamily(
            "lapor_projection_stopped",
            "1 while the read model is stopped in front of an event it cannot apply",
            labels=labels,
        )
        stopped_at = GaugeMetricFamily(
            "lapor_projection_stopped_at_seq",
            "Log sequence of the event the read model is stopped in front of (0: none)",
            labels=labels,
        )
        waiting = GaugeMetricFamily(
            "lapor_projection_waiting", "1 while the read model waits for PostgreSQL", labels=labels
        )
        failures = GaugeMetricFamily(
            "lapor_projection_consecutive_failures",
            "Failed attempts in a row (0 once the read model goes on)",
            labels=labels,
        )
        for handler in self.handlers:
            health = handler.health
            at = [self.service, health.name]
            checkpoint.add_metric(at, health.checkpoint or 0)
            stopped.add_metric(at, int(health.status == "stopped"))
            stopped_at.add_metric(at, health.stop.seq if health.stop else 0)
            waiting.add_metric(at, int(health.status == "waiting"))
            failures.add_metric(at, health.failures)
        yield from (checkpoint, stopped, stopped_at, waiting, failures)


def exposition(service: str, handlers: Sequence[ProjectionHandler]) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProjectionCollector(service, handlers))
    return generate_latest(registry)
