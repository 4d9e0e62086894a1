"""Facts as they stood at a past instant, folded in memory from the log itself.

The read model only knows the present; a figure "as of" a past moment is computed from the
events the log had stored by then. The cut is the stream's own storage timestamp (set by
the JetStream server when it stores a message; no client can backdate it), not the
envelope's ``occurred_at``: so once the moment has passed, no later append can change the
answer, and asking again gives the same figures.

The log is read from its first message with a short-lived (ephemeral, unacknowledged)
consumer, up to the first message stored after the instant. Each complaint's fact is a
few hundred bytes, so this is fine up to about a million complaints.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from lapor.analytics.metrics import Fact, fold
from lapor.shared.envelope import UnknownEvent, decode, parse
from lapor.shared.subjects import Subjects

FETCH_BATCH = 1000
FETCH_TIMEOUT_SECONDS = 5.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LogUnavailable(Exception):
    """The log could not be read to the end of the period: no partial answer is given."""


def instant_ns(at: datetime) -> int:
    """An aware instant as whole nanoseconds since the epoch (exact, no float)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {at.isoformat()}")
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def stored_ns(msg: Msg) -> int:
    """When the stream stored ``msg``, in nanoseconds, from its reply subject.

    ``msg.metadata.timestamp`` holds the same, but through a float that rounds to the
    microsecond; the exact integer keeps the cut at an instant unambiguous.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[7])
    if len(tokens) >= 11:  # with domain and account hash in front
        return int(tokens[Msg.Ack.Timestamp])
    raise LogUnavailable(f"not a JetStream message: reply subject {msg.reply!r}")


async def facts_as_of(
    js: JetStreamContext, subjects: Subjects, as_of: datetime
) -> tuple[list[Fact], int]:
    """The facts of every complaint folded from the events stored at or before ``as_of``,
    and the log sequence of the last such event (0: none)."""
    limit = instant_ns(as_of)
    stream = subjects.events_stream
    try:
        state = (await js.stream_info(stream)).state
    except Exception as e:
        raise LogUnavailable(f"stream {stream}: {e!r}") from e
    facts: dict[str, Fact] = {}
    last_seq = 0
    if state.messages == 0:
        return [], 0
    sub = await js.pull_subscribe(
        subjects.all_events,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        ),
    )
    try:
        done = False
        while not done:
            try:
                msgs = await sub.fetch(batch=FETCH_BATCH, timeout=FETCH_TIMEOUT_SECONDS)
            except TimeoutError as e:  # nats-py's own, or a plain one
                raise LogUnavailable(f"{stream}: no message after sequence {last_seq}") from e
            for msg in msgs:
                if stored_ns(msg) > limit:
                    done = True
                    break
                last_seq = msg.metadata.sequence.stream
                _fold_message(facts, msg, last_seq)
                # Whatever is stored after the stream's last message at the start of this
                # request was stored after as_of (which is in the past), so stop there.
                if last_seq >= state.last_seq or msg.metadata.num_pending == 0:
                    done = True
                    break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, sub._consumer)
    return sorted(facts.values(), key=lambda f: f.complaint_id), last_seq


def _fold_message(facts: dict[str, Fact], msg: Msg, seq: int) -> None:
    try:
        env = parse(msg.data)
        event = decode(env)
    except (ValidationError, UnknownEvent):
        return  # unreadable: the projections park it in the dead letters and go on too
    cid = env.complaint_id
    fact = fold(facts.get(cid), cid, event, env.occurred_at, seq)
    if fact is not None:
        facts[cid] = fact
