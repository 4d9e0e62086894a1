"""Declares the JetStream streams: the one place that does (services never declare).

FastStream would otherwise declare and update a stream at start-up, which a
``deny_delete`` stream refuses; subscribers use ``JStream(name, declare=False)``.
"""

from __future__ import annotations

from dataclasses import asdict

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from lapor.services.settings import Settings

log = structlog.get_logger(__name__)

DAY = 24 * 3600.0


def stream_configs(settings: Settings) -> list[StreamConfig]:
    s = settings.subjects
    common = dict(
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window_seconds,
    )
    return [
        # The source of truth: append-only, no age limit, nothing deleted or purged.
        StreamConfig(
            name=s.events_stream,
            subjects=[s.all_events],
            description="Complaint event log (source of truth)",
            deny_delete=True,
            deny_purge=True,
            max_age=0,
            allow_direct=True,
            **common,
        ),
        # Derived, per-agency copies; rebuildable from the log, so not write-once.
        StreamConfig(
            name=s.agency_stream,
            subjects=[s.all_agencies],
            description="Per-agency topics, no reporter identity",
            max_age=365 * DAY,
            **common,
        ),
        # Reporter contact: kept out of the log so that it can be erased on request.
        StreamConfig(
            name=s.reporters_stream,
            subjects=[s.all_reporters],
            description="Reporter contact (personal data, erasable)",
            **common,
        ),
        # Every staff sign-in attempt, for audit: two years, then gone.
        StreamConfig(
            name=s.signins_stream,
            subjects=[s.all_signins],
            description="Staff sign-in attempts (audit)",
            max_age=730 * DAY,
            **common,
        ),
        StreamConfig(
            name=s.dead_letter_stream,
            subjects=[s.all_dead_letters],
            description="Messages a consumer could not process, for operators",
            **common,
        ),
    ]


_COMPARED = ("subjects", "storage", "deny_delete", "deny_purge", "max_age", "duplicate_window")


async def declare_streams(js: JetStreamContext, settings: Settings) -> None:
    """Create missing streams; update a stream whose settings drifted (fails loudly if the
    server refuses, e.g. an attempt to lift ``deny_delete``)."""
    for config in stream_configs(settings):
        try:
            info = await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("stream created", stream=config.name)
            continue
        current, wanted = asdict(info.config), asdict(config)
        # The server reports "no limit" as 0 where the client sent None.
        drift = {
            k: (current.get(k), wanted[k])
            for k in _COMPARED
            if (current.get(k) or None) != (wanted[k] or None)
        }
        if drift:
            await js.update_stream(config)
            log.warning("stream updated", stream=config.name, drift=drift)
    await declare_buckets(js, settings)


RULES_HISTORY = 64
ACCOUNT_HISTORY = 16
SIGNIN_THROTTLE_SECONDS = 15 * 60
"""An address that failed too often may try again once it has been quiet this long."""
"""Past versions of an account kept (password changes, lock-outs, by whom)."""


def object_store_configs(settings: Settings) -> dict[str, ObjectStoreConfig]:
    """The object stores, by bucket name: the routing models, and the citizens'
    attachments (each object named by the sha256 of its bytes; personal data, so
    deletable on request, unlike the log)."""
    s = settings.subjects

    def config(description: str) -> ObjectStoreConfig:
        return ObjectStoreConfig(
            storage=StorageType.FILE, replicas=settings.stream_replicas, description=description
        )

    return {
        s.routing_models_bucket: config("Routing models published by operators"),
        s.attachments_bucket: config("Citizens' attachments (photos, documents), by sha256"),
    }


async def declare_buckets(js: JetStreamContext, settings: Settings) -> None:
    """The object stores (:func:`object_store_configs`) and the key-value buckets
    (:func:`key_value_configs`), replicated like the streams."""
    for name, config in object_store_configs(settings).items():
        try:
            await js.object_store(name)
        except BucketNotFoundError:
            await js.create_object_store(name, config=config)
            log.info("bucket created", bucket=name)
    for config in key_value_configs(settings):
        try:
            await js.key_value(config.bucket)
        except BucketNotFoundError:
            await js.create_key_value(config)
            log.info("bucket created", bucket=config.bucket)


def key_value_configs(settings: Settings) -> list[KeyValueConfig]:
    """The key-value buckets: the routing rules (their history keeps past tables), the
    staff accounts, and the portal's sessions (each entry gone after a session's
    lifetime, whatever happens to the portal)."""
    s = settings.subjects
    common = dict(storage=StorageType.FILE, replicas=settings.stream_replicas)
    return [
        KeyValueConfig(
            bucket=s.routing_rules_bucket,
            history=RULES_HISTORY,
            description="Routing rules published by operators",
            **common,
        ),
        KeyValueConfig(
            bucket=s.staff_accounts_bucket,
            history=ACCOUNT_HISTORY,
            description="Staff accounts: officers and coordinators (lapor accounts)",
            **common,
        ),
        KeyValueConfig(
            bucket=s.staff_throttle_bucket,
            ttl=SIGNIN_THROTTLE_SECONDS,
            description="Failed staff sign-ins per client address (a sliding window)",
            **common,
        ),
        KeyValueConfig(
            bucket=s.staff_sessions_bucket,
            ttl=settings.staff_session_seconds,
            description="The portal's signed-in staff sessions",
            **common,
        ),
    ]
