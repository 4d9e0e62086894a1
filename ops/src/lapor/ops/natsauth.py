"""NATS users and permissions generated from the OPD registry: one agency cannot read
another's messages.

With JetStream, a plain *subscribe* permission on ``<root>.agency.<opd>.>`` isolates
nothing: any user that may publish to the JetStream API can create a consumer on the
agency stream with any filter, fetch from another agency's durable, or read single
messages with ``STREAM.MSG.GET`` / ``DIRECT.GET``. So the design here is:

* the ``lapor`` service user (full permissions) pre-creates, for every unit, one durable
  pull consumer ``agency_<opd>`` on the agency stream, filtered to
  ``<root>.agency.<opd>.>`` (:func:`create_agency_consumers`);
* an agency user (username = OPD code) gets **no** permission to create, update or delete
  consumers, to get messages, to list or inspect streams, or to publish anything into
  a stream. It may only

  - request the next messages from its own durable
    (``$JS.API.CONSUMER.MSG.NEXT.<AGENCY>.agency_<opd>``),
  - read that durable's info (``$JS.API.CONSUMER.INFO.<AGENCY>.agency_<opd>``, which
    ``js.pull_subscribe(..., durable=..., stream=...)`` asks for first),
  - acknowledge what it was delivered (``$JS.ACK.<AGENCY>.agency_<opd>.>``: ack, nak,
    in-progress and term all go there),
  - receive replies on its own inbox prefix ``_INBOX_<opd>.>`` only. Subscribing to the
    shared ``_INBOX.>`` would let it see replies meant for other users of the account,
    including messages the services fetch; so the agency client must connect with
    ``nats.connect(..., inbox_prefix=inbox_prefix(opd))``.

  Nothing else: not the complaint log, reporter contacts or dead letters, not another
  agency's durable, no core subscription to any stream subject. The filter of a durable
  is fixed by the service user, so the filter is pinned to the
  agency's own subjects without relying on the filter token of
  ``$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>``.

How an agency reads (see ``services/tests/integration/test_agency_isolation.py``)::

    nc = await nats.connect(url, user=opd, password=pw, inbox_prefix=inbox_prefix(opd))
    sub = await nc.jetstream().pull_subscribe_bind(
        consumer_name(opd), stream=subjects.agency_stream
    )
    for msg in await sub.fetch(10, timeout=5):
        ...
        await msg.ack()

An operator generates the users whenever the registry changes, with the subject root the
services use::

    passwords = agency_passwords(registry, given=previous_passwords)  # hand these out
    write_private("lapor-users.conf", authorization_config(
        registry, settings.subjects, passwords, service_password=service_password))
    # nats-server.conf: include "lapor-users.conf"; then `nats-server --signal reload`
    await create_agency_consumers(js, registry, settings.subjects)  # as the service user

(:func:`server_config` writes a whole single-server configuration instead, as the tests
and a local setup need.) A unit removed from the registry loses its user on reload; its
durable stays until deleted by hand.

Passwords are written in plain text into the generated configuration unless a
``password_hasher`` is given (nats-server accepts bcrypt hashes, e.g.
``lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt()).decode()``). Treat the file
as a secret either way (a Kubernetes Secret, mode 0600); the plain passwords returned by
:func:`agency_passwords` are what an operator hands to each agency.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.shared.registry import Registry
from lapor.shared.subjects import Subjects

SERVICE_USER = "lapor"
"""The user every service connects as; full permissions."""


def consumer_name(opd: str) -> str:
    """The one durable pull consumer an agency reads from."""
    return f"agency_{opd}"


def inbox_prefix(opd: str) -> str:
    """The inbox prefix an agency client must connect with (``inbox_prefix=``)."""
    return f"_INBOX_{opd}"


def agency_permissions(opd: str, subjects: Subjects) -> dict[str, Any]:
    """nats-server ``permissions`` of one agency user: read-only access to its own durable.

    Everything not listed is denied (an allow list denies the rest)."""
    stream, durable = subjects.agency_stream, consumer_name(opd)
    return {
        "publish": {
            "allow": [
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(opd)}.>"]},
    }


def agency_consumer_config(opd: str, subjects: Subjects) -> ConsumerConfig:
    """The durable an agency reads: its own subjects only, explicit acks, from the start."""
    durable = consumer_name(opd)
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        description=f"Agency {opd}: read through its own NATS user",
        filter_subject=subjects.agency_all(opd),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
    )


async def create_agency_consumers(
    js: JetStreamContext, registry: Registry, subjects: Subjects
) -> list[str]:
    """Create (or bring up to date) every unit's durable; run as the service user.

    Idempotent: creating a consumer that exists with the same configuration is a no-op.
    Returns the consumer names."""
    names = []
    for unit in registry.units:
        config = agency_consumer_config(unit.code, subjects)
        await js.add_consumer(subjects.agency_stream, config=config)
        names.append(config.name)
    return names


def agency_passwords(registry: Registry, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """A password for every unit: the given ones, new random ones for the rest.

    The result is what an operator hands out; pass it to :func:`server_config`."""
    given = dict(given or {})
    _check_codes(registry, given)
    return {u.code: given.get(u.code) or secrets.token_urlsafe(24) for u in registry.units}


def authorization(
    registry: Registry,
    subjects: Subjects,
    passwords: Mapping[str, str],
    *,
    service_password: str,
    password_hasher: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The ``authorization`` block: the service user, then one user per registry unit.

    ``passwords`` must hold one non-empty password per unit (see :func:`agency_passwords`)
    and no other codes; ``password_hasher`` (e.g. bcrypt) turns each password into what
    the file stores."""
    _check_codes(registry, passwords)
    missing = [u.code for u in registry.units if not passwords.get(u.code)]
    if missing:
        raise ValueError(f"no password for: {', '.join(missing)}")
    if not service_password:
        raise ValueError("empty service password")
    secret = password_hasher or (lambda p: p)
    users: list[dict[str, Any]] = [{"user": SERVICE_USER, "password": secret(service_password)}]
    users += [
        {
            "user": unit.code,
            "password": secret(passwords[unit.code]),
            "permissions": agency_permissions(unit.code, subjects),
        }
        for unit in registry.units
    ]
    return {"users": users}


def authorization_config(
    registry: Registry,
    subjects: Subjects,
    passwords: Mapping[str, str],
    *,
    service_password: str,
    password_hasher: Callable[[str], str] | None = None,
) -> str:
    """Only the users, for ``include "lapor-users.conf"`` in a hand-written server
    configuration (such as ``deploy/nats/nats-server.conf``)."""
    block = authorization(
        registry,
        subjects,
        passwords,
        service_password=service_password,
        password_hasher=password_hasher,
    )
    return _dump({"authorization": block})


def server_config(
    registry: Registry,
    subjects: Subjects,
    passwords: Mapping[str, str],
    *,
    port: int,
    store_dir: str,
    service_password: str,
    host: str = "127.0.0.1",
    password_hasher: Callable[[str], str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A complete nats-server configuration with JetStream and the generated users.

    JSON, which the NATS configuration parser reads as it is (quoted strings are never
    taken for ``$variables``). ``extra`` adds or replaces top-level settings, for example
    ``{"jetstream": {"store_dir": ..., "sync_interval": "always"}}``."""
    config: dict[str, Any] = {
        "listen": f"{host}:{port}",
        "jetstream": {"store_dir": str(store_dir)},
        "authorization": authorization(
            registry,
            subjects,
            passwords,
            service_password=service_password,
            password_hasher=password_hasher,
        ),
    }
    config.update(extra or {})
    return _dump(config)


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Write a generated configuration readable by its owner only (it holds secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # also when the file existed with wider permissions


def _dump(config: Mapping[str, Any]) -> str:
    return json.dumps(config, indent=2) + "\n"


def _check_codes(registry: Registry, codes: Iterable[str]) -> None:
    if SERVICE_USER in registry:
        raise ValueError(f"an OPD code may not be {SERVICE_USER!r}: it is the service user")
    unknown = sorted(set(codes) - {u.code for u in registry.units})
    if unknown:
        raise ValueError(f"not in the OPD registry: {', '.join(unknown)}")
