"""Where an operations command finds the deployment's NATS and PostgreSQL.

Each command asks for what it uses, and only for that: ``lapor audit`` the NATS server
(``deployment(settings, database=False)``), ``lapor replay`` both. Given ones are used as
they are. A missing one is started locally (lapor-devtools, found through the
``lapor.infrastructure`` entry point: the system ``lapor run`` is running on the data
folder, or servers started for the command) only on a development machine; the command
stops instead, with one line naming what to set (:class:`Unreachable`), where starting
servers would be wrong:

* lapor-devtools is not installed (the runtime image);
* ``LAPOR_INFRA=none``;
* in a Kubernetes pod (``KUBERNETES_SERVICE_HOST`` is set): a Job that lost its
  ``DATABASE_URL`` must fail, not audit an empty PostgreSQL of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib.metadata import entry_points

from lapor.services.settings import Settings

NOT_NEEDED = "unused://not-needed.invalid"
"""Handed to the local infrastructure for a server the command does not use, so that it
starts none (it uses a given URL as given); the command never sees it."""


class Unreachable(RuntimeError):
    """A command needs a server it was not given, and none may be started here."""


def local_refusal(settings: Settings) -> str | None:
    """Why nothing local (servers, a secret in the data folder) may be made here, or
    ``None`` on a development machine, where it may."""
    if settings.infra == "none":
        return "LAPOR_INFRA=none starts no local servers"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "no local servers are started in a Kubernetes pod"
    if not entry_points(group="lapor.infrastructure", name="local"):
        return "local servers come with lapor-devtools, not installed here"
    return None


def missing(settings: Settings, *, nats: bool, database: bool) -> list[str]:
    """The variables a command needs that are not set."""
    wanted = [
        ("NATS_URL", nats, settings.nats_url),
        ("DATABASE_URL", database, settings.database_url),
    ]
    return [name for name, needed, url in wanted if needed and url is None]


@contextlib.contextmanager
def deployment(
    settings: Settings, *, nats: bool = True, database: bool = True
) -> Iterator[Settings]:
    """``settings`` with reachable URLs of the servers asked for, for the block; a server
    not asked for is neither required nor started."""
    unset = missing(settings, nats=nats, database=database)
    if not unset:
        yield settings
        return
    refusal = local_refusal(settings)
    if refusal is not None:
        raise Unreachable(f"set {' and '.join(unset)} ({refusal})")
    [local] = entry_points(group="lapor.infrastructure", name="local")
    placeholders = {
        key: getattr(settings, key) or NOT_NEEDED
        for key, needed in (("nats_url", nats), ("database_url", database))
        if not needed
    }
    asked = settings.model_copy(update=placeholders)
    with local.load()(asked) as infra:
        found = {"nats_url": infra.nats_url, "database_url": infra.database_url}
        asked_for = {key: url for key, url in found.items() if key not in placeholders}
        yield settings.model_copy(update=asked_for)
