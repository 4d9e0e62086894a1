"""NATS users and permissions: one agency cannot read another's messages, and its secret
never leaves its own hands.

Who signs in how
----------------

* Each service signs in as its own user, ``intake``, ``router``, ``tracker``,
  ``analytics`` (:data:`SERVICE_ROLES`), with a password and the least permissions it
  works with (:func:`service_permissions`): only intake may write the reporters' stream,
  and no service may read it. The operations commands (migrate, audit, replay, backup,
  ``lapor router train``, ``lapor agency consumers``) sign in as ``lapor``
  (:data:`SERVICE_USER`, role ``ops``), with every permission: they create and change
  streams, read every stream (the backup includes the reporters'), and create the
  agencies' consumers. It is the name of the single service user of earlier releases, so
  an existing password and Secret ``lapor-nats`` stay valid for the Jobs. The users file
  keeps only bcrypt hashes (:func:`hash_password`; nats-server recognises a ``$2a$…``
  password as a hash); each password goes into the ``NATS_URL`` of its role, through a
  Secret of its own.
* Each onboarded agency signs in with an **nkey**: an Ed25519 key pair. The users file
  keeps only the public key (``U…``); the seed (``SU…``) is written once, into a file
  only the operator can read, and handed to the agency. The server sends a nonce, the
  client signs it with the seed: nothing secret crosses the wire or sits in the
  configuration, and a leaked users file or state file opens nothing.

Agencies are added, rotated and removed one at a time by ``lapor agency``
(``lapor.ops.onboarding`` keeps the registry of onboarded agencies); the users file is
generated from that registry, so regenerating it changes nobody else's credential.

What an agency may do
---------------------

With JetStream, a plain *subscribe* permission on ``<root>.agency.<opd>.>`` isolates
nothing: any user that may publish to the JetStream API can create a consumer on the
agency stream with any filter, fetch from another agency's durable, or read single
messages with ``STREAM.MSG.GET`` / ``DIRECT.GET``. So the design here is:

* the ``lapor`` ops user pre-creates, for every unit, one durable pull consumer
  ``agency_<opd>`` on the agency stream, filtered to ``<root>.agency.<opd>.>``
  (:func:`create_agency_consumers`, :func:`create_agency_consumer`);
* an agency user gets **no** permission to create, update or delete consumers, to get
  messages, to list or inspect streams, or to publish anything into a stream. It may only

  - request the next messages from its own durable
    (``$JS.API.CONSUMER.MSG.NEXT.<AGENCY>.agency_<opd>``),
  - read that durable's info (``$JS.API.CONSUMER.INFO.<AGENCY>.agency_<opd>``),
  - acknowledge what it was delivered (``$JS.ACK.<AGENCY>.agency_<opd>.>``: ack, nak,
    in-progress and term all go there),
  - receive replies on its own inbox prefix ``_INBOX_<opd>.>`` only. Subscribing to the
    shared ``_INBOX.>`` would let it see replies meant for other users of the account,
    including messages the services fetch; so the agency client must connect with
    ``nats.connect(..., inbox_prefix=inbox_prefix(opd))``.

  Nothing else: not the complaint log, reporter contacts or dead letters, not another
  agency's durable, no core subscription to any stream subject. The filter of a durable
  is fixed by the service user, so it is pinned to the agency's own subjects without
  relying on the filter token of ``$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>``.

How an agency reads (``examples/agency_client.py`` is the whole of it)::

    nc = await nats.connect(url, nkeys_seed="dpupr.nk", inbox_prefix="_INBOX_dpupr")
    sub = await nc.jetstream().pull_subscribe_bind("agency_dpupr", stream="LAPOR_AGENCY")
    for msg in await sub.fetch(10, timeout=5):
        ...
        await msg.ack()
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lapor.shared.events import OPD_CODE
from lapor.shared.registry import Registry
from lapor.shared.subjects import Subjects

SERVICE_USER = "lapor"
"""The operations user (role ``ops``): migrate, audit, replay, backup, ``lapor router
train``, ``lapor agency consumers``. The name is the one the single service user of
earlier releases had, so that its password and the Secret ``lapor-nats`` stay valid."""

OPS = "ops"
HTTP_ROLES = ("portal", "open311")
"""Services that are clients of the others' HTTP APIs: they connect to NATS only because
every service's readiness does, and may do nothing there."""
SERVICE_ROLES = ("intake", "router", "tracker", "analytics", *HTTP_ROLES)
"""The long-running services, each with a user of its own and least privileges
(:func:`service_permissions`); the user's name is the role's."""
ROLES = (*SERVICE_ROLES, OPS)


def user_of(role: str) -> str:
    """The NATS user name of a role: the role itself, ``lapor`` for ``ops``."""
    if role not in ROLES:
        raise ValueError(f"no NATS role {role!r} (roles: {', '.join(ROLES)})")
    return SERVICE_USER if role == OPS else role


BCRYPT_ROUNDS = 11
"""Cost of the service password's hash: a service connects rarely, so a slow check is
cheap, and the hash must resist guessing if the users file leaks."""

_BCRYPT = re.compile(r"^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$")


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


async def create_agency_consumer(js: JetStreamContext, opd: str, subjects: Subjects) -> str:
    """Create (or bring up to date) one unit's durable; run as the service user.

    Idempotent: creating a consumer that exists with the same configuration is a no-op,
    and what it has delivered and acknowledged is kept."""
    config = agency_consumer_config(opd, subjects)
    await js.add_consumer(subjects.agency_stream, config=config)
    assert config.name is not None
    return config.name


async def create_agency_consumers(
    js: JetStreamContext, registry: Registry, subjects: Subjects
) -> list[str]:
    """Every unit's durable (:func:`create_agency_consumer`); returns their names."""
    return [await create_agency_consumer(js, unit.code, subjects) for unit in registry.units]


# --- the services' users -----------------------------------------------------------------


def _consumers_on(stream: str) -> list[str]:
    """The JetStream API a reader of ``stream`` needs for its own consumers: create them
    (durable, named or ephemeral), read their info, fetch, acknowledge, delete (a
    projection's follower recreates its durable; an ephemeral reader deletes its own)."""
    api = "$JS.API.CONSUMER"
    return [
        f"{api}.CREATE.{stream}",
        f"{api}.CREATE.{stream}.>",
        f"{api}.DURABLE.CREATE.{stream}.>",
        f"{api}.INFO.{stream}.>",
        f"{api}.DELETE.{stream}.>",
        f"{api}.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
    ]


def _reads_bucket(stream: str) -> list[str]:
    """Reading and watching a key-value bucket or object store (``KV_<b>``, ``OBJ_<b>``):
    single reads, and the ordered push consumers of ``watch``, ``history`` and object
    reads (with their flow control replies)."""
    return [
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def reporters_denied(subjects: Subjects) -> dict[str, list[str]]:
    """What no service but intake may do with the reporters' stream (names, phones,
    e-mails), denied explicitly so that a later, wider allow cannot open it: subscribe to
    its subjects, publish to them, read its messages, make or use a consumer on it.
    (``STREAM.INFO`` stays allowed: ``lapor migrate --check`` checks it exists.)"""
    stream = subjects.reporters_stream
    return {
        "publish": [
            subjects.all_reporters,
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.*.{stream}",
            f"$JS.API.CONSUMER.*.{stream}.>",
            f"$JS.API.CONSUMER.*.*.{stream}.>",
            f"$JS.ACK.{stream}.>",
        ],
        "subscribe": [subjects.all_reporters],
    }


def service_permissions(role: str, subjects: Subjects) -> dict[str, Any] | None:
    """nats-server ``permissions`` of a role's user (``None`` for ``ops``: everything).

    Every service may: ask ``$JS.API.INFO`` and the info of each stream and bucket (what
    ``lapor migrate --check`` in its init container does: configuration and counts, no
    message), read single events of the log (``STREAM.MSG.GET`` on the events stream:
    optimistic appends, checkpoint ages), receive replies on ``_INBOX.>``. Then:

    * ``intake`` appends ``complaint.received`` and writes the reporter's record to
      ``<root>.reporter.<id>``: the only user that may write the reporters' stream. It
      stores the attachments (``$O.<ROOT>_ATTACHMENTS.>``, and reads an object's record
      to find one already stored): the only user that may write them. It reads no
      consumer.
    * ``router`` reads the log through its consumers, appends ``complaint.routed`` and
      ``complaint.disposed``, publishes the agencies' copies to ``<root>.agency.>``,
      reads and watches the rules bucket and the models' object store, parks dead
      letters.
    * ``tracker`` reads the log through its consumers (read model, deadlines), appends
      the complaint's later events (anything but ``complaint.received``), parks dead
      letters, reads the attachments (to serve them to those who may read the
      complaint) and writes none.
    * ``analytics`` reads the log through its consumers and parks dead letters; it
      writes nothing else.
    * ``portal`` reads and writes the staff's accounts, sessions and failed sign-ins per
      address (key-value buckets) and records sign-ins; ``open311`` nothing beyond the
      common part (both are :data:`HTTP_ROLES`: clients of the other services' HTTP
      APIs).

    None of them may read the reporters' stream (:func:`reporters_denied`), the agency
    stream's consumers, or create, change or delete a stream."""
    user_of(role)
    if role == OPS:
        return None
    s = subjects
    events = s.events_stream
    buckets = [f"KV_{s.routing_rules_bucket}", f"OBJ_{s.routing_models_bucket}"]
    attachments = f"OBJ_{s.attachments_bucket}"  # intake writes, the tracker reads
    streams = [events, s.agency_stream, s.reporters_stream, s.dead_letter_stream, *buckets]
    streams.append(attachments)
    publish = ["$JS.API.INFO", *(f"$JS.API.STREAM.INFO.{name}" for name in streams)]
    publish.append(f"$JS.API.STREAM.MSG.GET.{events}")
    deny: dict[str, list[str]] = {"publish": [], "subscribe": []}
    if role == "intake":
        publish += [s.of_type("complaint.received"), f"{s.root}.reporter.*"]
        publish += [f"$O.{s.attachments_bucket}.>", f"$JS.API.STREAM.MSG.GET.{attachments}"]
    elif role in HTTP_ROLES:
        deny = reporters_denied(s)
    else:
        publish += [*_consumers_on(events), s.dead_letter("*")]
        deny = reporters_denied(s)
    if role == "router":
        publish += [s.of_type("complaint.routed"), s.of_type("complaint.disposed")]
        publish += [s.all_agencies]
        for bucket in buckets:
            publish += _reads_bucket(bucket)
    elif role == "tracker":
        publish.append(s.all_events)
        deny["publish"].append(s.of_type("complaint.received"))
        publish += _reads_bucket(attachments)
    elif role == "portal":
        for bucket in (s.staff_accounts_bucket, s.staff_sessions_bucket, s.staff_throttle_bucket):
            publish += [f"$JS.API.STREAM.INFO.KV_{bucket}", f"$KV.{bucket}.>"]
            publish += _reads_bucket(f"KV_{bucket}")
        publish.append(s.all_signins)
    permissions: dict[str, Any] = {
        "publish": {"allow": publish},
        "subscribe": {"allow": ["_INBOX.>"]},
    }
    for direction, denied in deny.items():
        if denied:
            permissions[direction]["deny"] = denied
    return permissions


# --- credentials ------------------------------------------------------------------------


@dataclass(frozen=True)
class AgencyKey:
    """A new agency credential: the seed to hand over, the public key for the server.

    The seed is left out of ``repr`` so that a stray log line or traceback cannot show it."""

    public: str
    seed: str = field(repr=False)


def new_agency_key() -> AgencyKey:
    """A fresh user nkey (32 random bytes from the operating system)."""
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return AgencyKey(public=public_key_of(seed.decode()), seed=seed.decode())


def public_key_of(seed: str) -> str:
    """The public key (``U…``) of a user seed (``SU…``)."""
    import nkeys

    pair = nkeys.from_seed(bytearray(seed.strip().encode()))
    try:
        public = pair.public_key.decode()
    finally:
        pair.wipe()
    return check_public_key(public)


def check_public_key(key: str) -> str:
    """``key`` if it is a well-formed public user nkey (prefix ``U``, checksum right);
    raises ``ValueError`` otherwise."""
    import nkeys

    try:
        raw = base64.b32decode(key.encode())
    except (binascii.Error, ValueError):
        raise ValueError(f"not a public user nkey: {key!r}") from None
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if len(raw) != 35 or raw[0] != nkeys.PREFIX_BYTE_USER or nkeys.crc16(body) != crc:
        raise ValueError(f"not a public user nkey: {key!r}")
    return key


def hash_password(password: str, rounds: int | None = None) -> str:
    """The bcrypt hash nats-server checks a password against (prefix ``$2a$``, the one the
    server's own ``mkpasswd`` writes)."""
    import bcrypt

    if not password:
        raise ValueError("empty password")
    salt = bcrypt.gensalt(rounds=rounds or BCRYPT_ROUNDS, prefix=b"2a")
    return bcrypt.hashpw(password.encode(), salt).decode()


def is_password_hash(value: str) -> bool:
    return bool(_BCRYPT.match(value))


# --- the server's users -----------------------------------------------------------------


def authorization(
    subjects: Subjects,
    *,
    service_password: str,
    agencies: Mapping[str, str],
    service_passwords: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``authorization`` block: the ops user ``lapor``, one user per service role
    (:data:`SERVICE_ROLES`) with its permissions, then one nkey user per agency.

    Passwords are written as given: bcrypt hashes (:func:`hash_password`) in a deployment.
    ``service_password`` is the ops user's; ``service_passwords`` maps each service role
    to its own (``None``: the ops user only, as before per-service users). ``agencies``
    maps each onboarded unit to its public key."""
    if not service_password:
        raise ValueError("empty service password")
    _check_agencies(agencies)
    users: list[dict[str, Any]] = [{"user": SERVICE_USER, "password": service_password}]
    if service_passwords is not None:
        missing = [role for role in SERVICE_ROLES if not service_passwords.get(role)]
        if missing:
            raise ValueError(f"no password for the service user(s) {', '.join(missing)}")
        users += [
            {
                "user": user_of(role),
                "password": service_passwords[role],
                "permissions": service_permissions(role, subjects),
            }
            for role in SERVICE_ROLES
        ]
    users += [
        {"nkey": agencies[opd], "permissions": agency_permissions(opd, subjects)}
        for opd in sorted(agencies)
    ]
    return {"users": users}


def authorization_config(
    subjects: Subjects,
    *,
    service_password: str,
    agencies: Mapping[str, str],
    service_passwords: Mapping[str, str] | None = None,
) -> str:
    """Only the users, for ``include "users.conf"`` in a hand-written server configuration
    (such as ``deploy/nats/nats-server.conf``). JSON, which the NATS configuration parser
    reads as it is (quoted strings are never taken for ``$variables``)."""
    block = authorization(
        subjects,
        service_password=service_password,
        agencies=agencies,
        service_passwords=service_passwords,
    )
    return _dump({"authorization": block})


def server_config(
    subjects: Subjects,
    *,
    port: int,
    store_dir: str,
    service_password: str,
    agencies: Mapping[str, str],
    service_passwords: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A complete nats-server configuration with JetStream and the generated users, as the
    tests and a local setup need. ``extra`` adds or replaces top-level settings, for
    example ``{"jetstream": {"store_dir": ..., "sync_interval": "always"}}``."""
    config: dict[str, Any] = {
        "listen": f"{host}:{port}",
        "jetstream": {"store_dir": str(store_dir)},
        "authorization": authorization(
            subjects,
            service_password=service_password,
            agencies=agencies,
            service_passwords=service_passwords,
        ),
    }
    config.update(extra or {})
    return _dump(config)


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Write a file readable by its owner only (a secret, or what guards one).

    Written beside the target and renamed over it, so that a reader (or a crash) never
    sees half a file, and created with mode 0600 so that it is never readable by others,
    not even for an instant."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # also if an umask or an old file had other ideas
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _dump(config: Mapping[str, Any]) -> str:
    return json.dumps(config, indent=2) + "\n"


def _check_agencies(agencies: Mapping[str, str]) -> None:
    for name in (SERVICE_USER, *ROLES):
        if name in agencies:
            raise ValueError(f"an OPD code may not be {name!r}: it is a service user")
    for opd, key in agencies.items():
        if not re.match(OPD_CODE, opd):
            raise ValueError(f"not an OPD code: {opd!r}")
        check_public_key(key)
    _no_duplicates(agencies.values())


def _no_duplicates(keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"one public key for two agencies: {key}")
        seen.add(key)
