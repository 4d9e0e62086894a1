"""Feeding a read model from the whole log with FastStream's batch pull subscriber."""

from __future__ import annotations

from typing import Annotated

from faststream import AckPolicy, Context
from faststream.nats import JStream, PullSub
from faststream.nats.message import NatsBatchMessage

from lapor.services.consumers import Projection, consumer_config, project_batch
from lapor.services.runtime import Runtime

# How long a batch waits to fill up: bounds the delay from the log to the read model.
BATCH_WAIT_SECONDS = 0.05


def subscribe_projection(rt: Runtime, projection: Projection) -> None:
    """Apply every complaint event, in log order, to ``projection``.

    One durable consumer per projection. Order matters, so the consumer lets no more than
    one batch be unacknowledged (``max_ack_pending``): a failed batch is redelivered before
    anything after it, and ``project_batch`` refuses to skip a sequence.
    """
    subjects = rt.settings.subjects
    size = rt.settings.projection_batch_size
    durable = projection.name.replace(".", "_")

    @rt.broker.subscriber(
        subjects.all_events,
        stream=JStream(subjects.events_stream, declare=False),
        durable=durable,
        config=consumer_config(durable, subjects.all_events, rt.settings, max_ack_pending=size),
        pull_sub=PullSub(batch_size=size, timeout=BATCH_WAIT_SECONDS, batch=True),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_events(msg: Annotated[NatsBatchMessage, Context("message")]) -> None:
        await project_batch(
            rt.db, projection, msg.raw_message, dead_letters=rt.dead_letters, settings=rt.settings
        )
