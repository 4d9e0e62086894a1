"""The one bootstrap step: declare the JetStream streams and migrate PostgreSQL."""

from __future__ import annotations

import asyncpg
import nats

from lapor.services.database import migrate
from lapor.services.settings import Settings
from lapor.services.topology import declare_streams


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
