"""Where an operations command finds the deployment's NATS and PostgreSQL.

In a deployment (a Kubernetes Job, ``kubectl exec``) ``NATS_URL`` and ``DATABASE_URL`` are
given, and used. On a development machine they usually are not: then lapor-devtools'
local infrastructure is used (the system ``lapor run`` is running on the data folder, or
servers started for the command). It is found through the ``lapor.infrastructure`` entry
point, so that the runtime image, which has no devtools, needs nothing of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.metadata import entry_points

from lapor.services.settings import Settings


@contextlib.contextmanager
def deployment(settings: Settings) -> Iterator[Settings]:
    """``settings`` with reachable NATS and PostgreSQL URLs, for the block."""
    if settings.nats_url is not None and settings.database_url is not None:
        yield settings
        return
    local = entry_points(group="lapor.infrastructure", name="local")
    if not local:
        raise RuntimeError(
            "set NATS_URL and DATABASE_URL (local servers come with lapor-devtools, "
            "not installed here)"
        )
    with next(iter(local)).load()(settings) as infra:
        urls = {"nats_url": infra.nats_url, "database_url": infra.database_url}
        yield settings.model_copy(update=urls)
