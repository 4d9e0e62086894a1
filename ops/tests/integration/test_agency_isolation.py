"""One agency cannot read another's messages, on a real nats-server with the generated
configuration (``lapor.ops.natsauth``): each agency signs in with its own nkey.

Every attack is run twice on the same fresh server: first as agency A, where the server
must refuse it (a permissions violation naming the exact subject, reported through
``error_cb``, and the operation times out with nothing read), then as the ``lapor``
service user, where the very same code must succeed and return agency B's data. So the
test fails if the permissions were missing or too wide, and also if an attack were
refused for some other reason (a mistake in the attack itself).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from lapor.devtools.infra import embedded_nats, free_port, nats_server_binary
from lapor.ops import natsauth
from lapor.services.settings import Settings
from lapor.services.topology import stream_configs
from lapor.shared.registry import Registry, load_registry
from lapor.shared.subjects import Subjects

pytestmark = pytest.mark.connected

SERVICE_PASSWORD = "service-secret"
REFUSED_TIMEOUT = 0.3
"""How long an agency's refused request waits: the server drops it, nothing answers."""
DELIVERED_TIMEOUT = 10
"""How long the service user waits for what it may read: it returns as soon as it comes; a
loaded CI machine once took more than 2 s."""


@dataclass
class Conn:
    nc: Client
    js: JetStreamContext
    violations: list[str]


@dataclass
class World:
    url: str
    subjects: Subjects
    registry: Registry
    seeds: dict[str, str]
    a: str
    b: str
    service: Conn
    other_service: Conn
    agency_a: Conn
    agency_b: Conn
    b_seq: int
    event_seq: int

    @property
    def stream(self) -> str:
        return self.subjects.agency_stream

    def payload(self, opd: str) -> bytes:
        return f"assigned to {opd}".encode()


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A private nats-server running the generated configuration (one per module; each
    test gets fresh streams and consumers on it), every unit onboarded with its own nkey."""
    tmp_path = tmp_path_factory.mktemp("nats-auth")
    keys = {unit.code: natsauth.new_agency_key() for unit in load_registry().units}
    port = free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        natsauth.server_config(
            Subjects("iso"),
            port=port,
            store_dir=str(tmp_path / "js"),
            service_password=SERVICE_PASSWORD,
            agencies={code: key.public for code, key in keys.items()},
        )
    )
    with embedded_nats(tmp_path / "js", port=port, config=conf) as url:
        yield url, {code: key.seed for code, key in keys.items()}


async def connect(url: str, *, inbox: str | None, api_wait: float, **auth: str) -> Conn:
    """As the service user (``user=``, ``password=``) or an agency (``nkeys_seed_str=``)."""
    violations: list[str] = []

    async def error_cb(e: Exception) -> None:
        violations.append(str(e))

    options = {"inbox_prefix": inbox} if inbox else {}
    nc = await nats.connect(url, error_cb=error_cb, allow_reconnect=False, **options, **auth)
    return Conn(nc, nc.jetstream(timeout=api_wait), violations)


async def as_service(url: str) -> Conn:
    return await connect(
        url, inbox=None, api_wait=5, user=natsauth.SERVICE_USER, password=SERVICE_PASSWORD
    )


@pytest.fixture
async def world(nats_url: tuple[str, dict[str, str]]) -> AsyncIterator[World]:
    url, seeds = nats_url
    registry = load_registry()
    subjects = Subjects("iso")
    a, b = registry.units[0].code, registry.units[1].code

    service = await as_service(url)
    streams = stream_configs(Settings(subject_root="iso", stream_replicas=1))
    for config in streams:
        # Direct gets enabled on every stream: the worst case, so that the attack through
        # DIRECT.GET would work if the permissions let it through.
        await service.js.add_stream(dataclasses.replace(config, allow_direct=True))
    names = await natsauth.create_agency_consumers(service.js, registry, subjects)
    assert len(names) == len(registry.units)

    await service.js.publish(subjects.agency(a, "complaint_assigned"), f"assigned to {a}".encode())
    ack = await service.js.publish(
        subjects.agency(b, "complaint_assigned"), f"assigned to {b}".encode()
    )
    event = await service.js.publish(subjects.complaint("LPR-1", "received"), b"the log")

    conns = [service]
    try:
        other_service = await as_service(url)
        conns.append(other_service)
        agency = {}
        for code in (a, b):
            agency[code] = await connect(
                url,
                inbox=natsauth.inbox_prefix(code),
                api_wait=REFUSED_TIMEOUT,
                nkeys_seed_str=seeds[code],
            )
            conns.append(agency[code])
        yield World(
            url=url,
            subjects=subjects,
            registry=registry,
            seeds=seeds,
            a=a,
            b=b,
            service=service,
            other_service=other_service,
            agency_a=agency[a],
            agency_b=agency[b],
            b_seq=ack.seq,
            event_seq=event.seq,
        )
    finally:
        for config in streams:
            await service.js.delete_stream(config.name)
        for conn in conns:
            await conn.nc.close()


# --- what an agency may do --------------------------------------------------------------


async def read_own(conn: Conn, w: World, opd: str) -> None:
    sub = await conn.js.pull_subscribe(
        w.subjects.agency_all(opd), durable=natsauth.consumer_name(opd), stream=w.stream
    )
    msgs = await sub.fetch(10, timeout=1)
    assert [(m.subject, m.data) for m in msgs] == [
        (w.subjects.agency(opd, "complaint_assigned"), w.payload(opd))
    ]
    await msgs[0].ack_sync()
    info = await sub.consumer_info()
    assert (info.num_ack_pending, info.num_pending, info.ack_floor.stream_seq) == (
        0,
        0,
        msgs[0].metadata.sequence.stream,
    )
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.2)


async def test_each_agency_reads_exactly_its_own_messages_and_acks(world: World) -> None:
    await read_own(world.agency_a, world, world.a)
    await read_own(world.agency_b, world, world.b)
    assert world.agency_a.violations == []
    assert world.agency_b.violations == []


async def test_agency_client_must_use_its_own_inbox_prefix(world: World) -> None:
    """Replies on the shared ``_INBOX.>`` could be anybody's; an agency may not listen there."""
    conn = await connect(
        world.url, inbox=None, api_wait=REFUSED_TIMEOUT, nkeys_seed_str=world.seeds[world.a]
    )
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await conn.js.consumer_info(world.stream, natsauth.consumer_name(world.a))
        assert any(
            'permissions violation for subscription to "_inbox.' in v for v in conn.violations
        )
    finally:
        await conn.nc.close()


async def test_a_key_not_onboarded_is_refused(world: World) -> None:
    async def quiet(e: Exception) -> None:
        pass

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            world.url,
            nkeys_seed_str=natsauth.new_agency_key().seed,
            allow_reconnect=False,
            connect_timeout=1,
            error_cb=quiet,
        )


# --- what an agency may not do ----------------------------------------------------------

Attack = Callable[[Conn, World], Awaitable[None]]


def waited(conn: Conn, w: World) -> float:
    """How long an attack waits for what it reads: short where it must be refused."""
    return REFUSED_TIMEOUT if conn is w.agency_a else DELIVERED_TIMEOUT


async def fetch_from_others_durable(conn: Conn, w: World) -> None:
    sub = await conn.js.pull_subscribe_bind(natsauth.consumer_name(w.b), stream=w.stream)
    (msg,) = await sub.fetch(1, timeout=waited(conn, w))
    assert msg.data == w.payload(w.b)


async def others_durable_info(conn: Conn, w: World) -> None:
    info = await conn.js.consumer_info(w.stream, natsauth.consumer_name(w.b))
    assert info.config.filter_subject == w.subjects.agency_all(w.b)


async def create_consumer_on_others_subjects(conn: Conn, w: World) -> None:
    config = ConsumerConfig(
        name="spy", durable_name="spy", filter_subject=w.subjects.agency_all(w.b)
    )
    await conn.js.add_consumer(w.stream, config)
    sub = await conn.js.pull_subscribe_bind("spy", stream=w.stream)
    (msg,) = await sub.fetch(1, timeout=2)
    assert msg.data == w.payload(w.b)


async def repoint_own_durable_to_others_subjects(conn: Conn, w: World) -> None:
    """The legacy ``CONSUMER.DURABLE.CREATE`` form (no filter in the subject)."""
    own = natsauth.consumer_name(w.a)
    config = ConsumerConfig(
        durable_name=own,
        filter_subject=w.subjects.agency_all(w.b),
        deliver_policy=DeliverPolicy.ALL,
    )
    info = await conn.js.add_consumer(w.stream, config)
    assert info.config.filter_subject == w.subjects.agency_all(w.b)


async def repoint_own_durable_with_filter_in_subject(conn: Conn, w: World) -> None:
    """The ``CONSUMER.CREATE.<stream>.<name>.<filter>`` form newer clients use."""
    own = natsauth.consumer_name(w.a)
    config = natsauth.agency_consumer_config(w.b, w.subjects)
    config = dataclasses.replace(config, name=own, durable_name=own)
    info = await conn.js.add_consumer(w.stream, config)
    assert info.config.filter_subject == w.subjects.agency_all(w.b)


async def ordered_consumer_on_whole_stream(conn: Conn, w: World) -> None:
    sub = await conn.js.subscribe(w.subjects.all_agencies, ordered_consumer=True, stream=w.stream)
    seen = {(await sub.next_msg(timeout=2)).data for _ in range(2)}
    assert w.payload(w.b) in seen


async def ephemeral_pull_consumer_on_whole_stream(conn: Conn, w: World) -> None:
    sub = await conn.js.pull_subscribe(w.subjects.all_agencies, stream=w.stream)
    msgs = await sub.fetch(2, timeout=2)
    assert w.payload(w.b) in {m.data for m in msgs}


async def stream_msg_get(conn: Conn, w: World) -> None:
    msg = await conn.js.get_msg(w.stream, seq=w.b_seq)
    assert msg.data == w.payload(w.b)


async def stream_last_msg_get_by_subject(conn: Conn, w: World) -> None:
    msg = await conn.js.get_last_msg(w.stream, w.subjects.agency(w.b, "complaint_assigned"))
    assert msg.data == w.payload(w.b)


async def direct_get(conn: Conn, w: World) -> None:
    msg = await conn.js.get_msg(w.stream, seq=w.b_seq, direct=True)
    assert msg.data == w.payload(w.b)


async def direct_get_from_the_log(conn: Conn, w: World) -> None:
    msg = await conn.js.get_msg(w.subjects.events_stream, seq=w.event_seq, direct=True)
    assert msg.data == b"the log"


async def stream_info_lists_subjects(conn: Conn, w: World) -> None:
    info = await conn.js.stream_info(w.stream, subjects_filter=">")
    assert w.subjects.agency(w.b, "complaint_assigned") in (info.state.subjects or {})


async def core_subscribe_to_others_subjects(conn: Conn, w: World) -> None:
    sub = await conn.nc.subscribe(w.subjects.agency_all(w.b))
    await conn.nc.flush()
    await w.service.js.publish(w.subjects.agency(w.b, "complaint_followed_up"), b"live")
    msg = await sub.next_msg(timeout=waited(conn, w))
    assert msg.data == b"live"


async def snoop_on_service_replies(conn: Conn, w: World) -> None:
    """Replies to the services arrive on ``_INBOX.…``; whoever listens there reads them."""
    sub = await conn.nc.subscribe("_INBOX.>")
    await conn.nc.flush()
    await w.service.js.get_msg(w.stream, seq=w.b_seq)
    msg = await sub.next_msg(timeout=waited(conn, w))
    assert b"message" in msg.data  # the STREAM.MSG.GET response, B's message inside


async def publish_into_the_log(conn: Conn, w: World) -> None:
    ack = await conn.js.publish(w.subjects.complaint("LPR-2", "resolved"), b"forged")
    assert ack.stream == w.subjects.events_stream


async def publish_into_others_topic(conn: Conn, w: World) -> None:
    ack = await conn.js.publish(w.subjects.agency(w.b, "complaint_assigned"), b"forged")
    assert ack.stream == w.stream


async def delete_others_durable(conn: Conn, w: World) -> None:
    assert await conn.js.delete_consumer(w.stream, natsauth.consumer_name(w.b))


ATTACKS: dict[str, tuple[Attack, Callable[[World], str]]] = {
    # name: (attack, the subject the server must refuse: "sub " for a subscription)
    "fetch from B's durable": (
        fetch_from_others_durable,
        lambda w: f"$JS.API.CONSUMER.MSG.NEXT.{w.stream}.agency_{w.b}",
    ),
    "info of B's durable": (
        others_durable_info,
        lambda w: f"$JS.API.CONSUMER.INFO.{w.stream}.agency_{w.b}",
    ),
    "create a durable filtered on B": (
        create_consumer_on_others_subjects,
        lambda w: f"$JS.API.CONSUMER.CREATE.{w.stream}.spy.{w.subjects.agency_all(w.b)}",
    ),
    "re-point own durable to B (DURABLE.CREATE)": (
        repoint_own_durable_to_others_subjects,
        lambda w: f"$JS.API.CONSUMER.DURABLE.CREATE.{w.stream}.agency_{w.a}",
    ),
    "re-point own durable to B (CREATE with filter)": (
        repoint_own_durable_with_filter_in_subject,
        lambda w: f"$JS.API.CONSUMER.CREATE.{w.stream}.agency_{w.a}.{w.subjects.agency_all(w.b)}",
    ),
    "ordered consumer on the whole stream": (
        ordered_consumer_on_whole_stream,
        lambda w: f"$JS.API.CONSUMER.CREATE.{w.stream}",
    ),
    "ephemeral pull consumer on the whole stream": (
        ephemeral_pull_consumer_on_whole_stream,
        lambda w: f"$JS.API.CONSUMER.CREATE.{w.stream}.",
    ),
    "STREAM.MSG.GET by sequence": (
        stream_msg_get,
        lambda w: f"$JS.API.STREAM.MSG.GET.{w.stream}",
    ),
    "STREAM.MSG.GET last by B's subject": (
        stream_last_msg_get_by_subject,
        lambda w: f"$JS.API.STREAM.MSG.GET.{w.stream}",
    ),
    "DIRECT.GET of B's message": (
        direct_get,
        lambda w: f"$JS.API.DIRECT.GET.{w.stream}",
    ),
    "DIRECT.GET from the complaint log": (
        direct_get_from_the_log,
        lambda w: f"$JS.API.DIRECT.GET.{w.subjects.events_stream}",
    ),
    "stream info listing subjects": (
        stream_info_lists_subjects,
        lambda w: f"$JS.API.STREAM.INFO.{w.stream}",
    ),
    "core subscribe to B's subjects": (
        core_subscribe_to_others_subjects,
        lambda w: f"sub {w.subjects.agency_all(w.b)}",
    ),
    "listen on the shared _INBOX.>": (
        snoop_on_service_replies,
        lambda w: "sub _INBOX.>",
    ),
    "publish into the complaint log": (
        publish_into_the_log,
        lambda w: w.subjects.complaint("LPR-2", "resolved"),
    ),
    "publish into B's topic": (
        publish_into_others_topic,
        lambda w: w.subjects.agency(w.b, "complaint_assigned"),
    ),
    "delete B's durable": (
        delete_others_durable,
        lambda w: f"$JS.API.CONSUMER.DELETE.{w.stream}.agency_{w.b}",
    ),
}


@pytest.mark.parametrize("name", ATTACKS)
async def test_agency_is_refused_what_the_service_user_can_do(world: World, name: str) -> None:
    attack, refused = ATTACKS[name]
    expected = refused(world)
    if expected.startswith("sub "):
        expected = f'permissions violation for subscription to "{expected[4:]}'
    else:
        expected = f'permissions violation for publish to "{expected}'
    if not expected.endswith("."):  # a subject ending in "." is a prefix (a random name)
        expected += '"'
    expected = expected.lower()  # nats-py lower-cases the server's error text

    # As agency A: the server drops the request, so nothing answers and nothing is read.
    with pytest.raises(nats.errors.TimeoutError):
        await attack(world.agency_a, world)
    await world.agency_a.nc.flush()
    assert any(v.startswith(f"nats: {expected}") for v in world.agency_a.violations), (
        world.agency_a.violations
    )

    # As the service user: the very same code succeeds and reads B's data.
    conn = world.other_service if name == "listen on the shared _INBOX.>" else world.service
    await attack(conn, world)
    assert conn.violations == []


def test_users_fragment_can_be_included_in_a_hand_written_config(tmp_path: Path) -> None:
    """The form ``deploy/nats/nats-server.conf`` uses: ``include "lapor-users.conf"``."""
    users = tmp_path / "lapor-users.conf"
    natsauth.write_private(
        users,
        natsauth.authorization_config(
            Subjects("lapor"),
            service_password=natsauth.hash_password(SERVICE_PASSWORD, rounds=4),
            agencies={
                unit.code: natsauth.new_agency_key().public for unit in load_registry().units
            },
        ),
    )
    main = tmp_path / "nats-server.conf"
    main.write_text(
        f"listen: 127.0.0.1:{free_port()}\n"
        f"jetstream {{ store_dir: {json.dumps(str(tmp_path / 'js'))}, sync_interval: always }}\n"
        'include "lapor-users.conf"\n'
    )
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(main)], capture_output=True, text=True, timeout=10
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
