"""The one bootstrap step: declare the JetStream streams and migrate PostgreSQL."""

from __future__ import annotations

import asyncpg
import nats
import nats.js.errors

from lapor.services.database import migrate, pending_migrations
from lapor.services.settings import Settings
from lapor.services.topology import declare_streams, object_store_configs, stream_configs


async def bootstrap(settings: Settings) -> list[str]:
    """Idempotent; safe to run on every deploy. Returns the SQL migrations applied now."""
    if settings.nats_url is None or settings.database_url is None:
        raise ValueError("bootstrap needs NATS_URL and DATABASE_URL")
    nc = await nats.connect(settings.nats_servers)
    try:
        await declare_streams(nc.jetstream(), settings)
    finally:
        await nc.close()
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def missing(settings: Settings) -> list[str]:
    """What ``bootstrap`` would still have to do, changing nothing: the streams and the
    rules bucket that do not exist, and (with a DATABASE_URL) the migrations not applied.
    Empty when the deployment is ready for its services."""
    if settings.nats_url is None:
        raise ValueError("the check needs NATS_URL")
    absent: list[str] = []
    nc = await nats.connect(settings.nats_servers)
    try:
        js = nc.jetstream()
        for config in stream_configs(settings):
            try:
                await js.stream_info(config.name)
            except nats.js.errors.NotFoundError:
                absent.append(f"stream {config.name}")
        try:
            await js.key_value(settings.subjects.routing_rules_bucket)
        except nats.js.errors.BucketNotFoundError:
            absent.append(f"bucket {settings.subjects.routing_rules_bucket}")
        for bucket in object_store_configs(settings):
            try:
                await js.object_store(bucket)
            except nats.js.errors.BucketNotFoundError:
                absent.append(f"bucket {bucket}")
    finally:
        await nc.close()
    if settings.database_url is not None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            absent += [f"migration {name}" for name in await pending_migrations(conn)]
        finally:
            await conn.close()
    return absent
