"""The generated NATS users: agency A's permissions reach nothing of agency B's."""

from __future__ import annotations

import json
import os
import stat
from itertools import permutations
from pathlib import Path

import pytest

from lapor.ops import natsauth
from lapor.shared.registry import load_registry
from lapor.shared.subjects import Subjects

SUBJECTS = Subjects("lapor")
REGISTRY = load_registry()
CODES = [u.code for u in REGISTRY.units]
STREAM = SUBJECTS.agency_stream


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return i == len(p) - 1 and len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def allowed(opd: str, kind: str, subject: str) -> bool:
    perms = natsauth.agency_permissions(opd, SUBJECTS)[kind]
    return any(matches(p, subject) for p in perms["allow"]) and not any(
        matches(p, subject) for p in perms.get("deny", [])
    )


def test_matcher() -> None:
    assert matches("a.>", "a.b.c") and not matches("a.>", "a")
    assert matches("a.*.c", "a.b.c") and not matches("a.*", "a.b.c")
    assert not matches("_INBOX_dpupr.>", "_INBOX_dpupr_x.1")


KEYS = {code: natsauth.new_agency_key() for code in CODES[:3]}
AGENCIES = {code: key.public for code, key in KEYS.items()}


def config(**kwargs) -> dict:
    text = natsauth.server_config(
        SUBJECTS,
        port=4333,
        store_dir="/data/js",
        service_password="svc",
        agencies=AGENCIES,
        **kwargs,
    )
    return json.loads(text)


def test_the_service_user_has_a_password_and_every_agency_an_nkey_and_no_secret() -> None:
    users = config()["authorization"]["users"]
    assert users[0] == {"user": "lapor", "password": "svc"}
    assert users[1:] == [
        {"nkey": AGENCIES[code], "permissions": natsauth.agency_permissions(code, SUBJECTS)}
        for code in sorted(AGENCIES)
    ]
    text = json.dumps(config())
    assert not any(key.seed in text for key in KEYS.values())


def test_server_config_listens_on_loopback_with_jetstream() -> None:
    c = config()
    assert c["listen"] == "127.0.0.1:4333"
    assert c["jetstream"] == {"store_dir": "/data/js"}
    assert config(extra={"jetstream": {"store_dir": "/x", "sync_interval": "always"}})[
        "jetstream"
    ] == {"store_dir": "/x", "sync_interval": "always"}


def test_authorization_config_is_the_same_users_for_an_include() -> None:
    fragment = json.loads(
        natsauth.authorization_config(SUBJECTS, service_password="svc", agencies=AGENCIES)
    )
    assert fragment == {"authorization": config()["authorization"]}


def test_an_agency_key_is_a_user_nkey_whose_seed_is_kept_out_of_repr() -> None:
    key = natsauth.new_agency_key()
    assert key.public.startswith("U") and len(key.public) == 56
    assert key.seed.startswith("SU")
    assert natsauth.public_key_of(key.seed) == key.public
    assert key.seed not in repr(key) and key.public in repr(key)
    assert natsauth.new_agency_key().public != key.public


def _broken_checksum(public: str) -> str:
    """The key with its last character changed (to one it surely is not)."""
    return public[:-1] + ("B" if public.endswith("A") else "A")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not base32!",
        "S" + natsauth.new_agency_key().public[1:],  # not a user key
        natsauth.new_agency_key().seed,  # a seed is no public key
        _broken_checksum(natsauth.new_agency_key().public),
    ],
)
def test_a_malformed_public_key_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a public user nkey"):
        natsauth.check_public_key(bad)
    with pytest.raises(ValueError, match="not a public user nkey"):
        natsauth.authorization(SUBJECTS, service_password="svc", agencies={"dpupr": bad})


def test_the_service_password_is_kept_as_a_bcrypt_hash_nats_server_reads() -> None:
    import bcrypt

    hashed = natsauth.hash_password("s3cret", rounds=4)
    assert hashed.startswith("$2a$04$") and natsauth.is_password_hash(hashed)
    assert bcrypt.checkpw(b"s3cret", hashed.encode())
    assert not natsauth.is_password_hash("s3cret")
    with pytest.raises(ValueError, match="empty password"):
        natsauth.hash_password("")


@pytest.mark.parametrize(("a", "b"), list(permutations(CODES[:6], 2)))
def test_permissions_of_a_never_mention_b(a: str, b: str) -> None:
    perms = natsauth.agency_permissions(a, SUBJECTS)
    tokens = {t for subject in _all(perms) for t in subject.split(".")}
    assert b not in tokens
    assert natsauth.consumer_name(b) not in tokens
    assert natsauth.inbox_prefix(b) not in tokens
    assert not any(s.startswith(SUBJECTS.agency_all(b)[:-1]) for s in _all(perms))


@pytest.mark.parametrize("a", CODES)
def test_agency_reaches_its_own_durable_and_nothing_of_anyone_else(a: str) -> None:
    own = natsauth.consumer_name(a)
    # What reading its own durable needs.
    for subject in (
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{own}",
        f"$JS.API.CONSUMER.INFO.{STREAM}.{own}",
        f"$JS.ACK.{STREAM}.{own}.1.5.3.1795898832199067808.0",
    ):
        assert allowed(a, "publish", subject), subject
    assert allowed(a, "subscribe", f"{natsauth.inbox_prefix(a)}.abc.1")

    for b in CODES:
        if b == a:
            continue
        other = natsauth.consumer_name(b)
        for subject in (
            f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{other}",
            f"$JS.API.CONSUMER.INFO.{STREAM}.{other}",
            f"$JS.API.CONSUMER.DELETE.{STREAM}.{other}",
            f"$JS.ACK.{STREAM}.{other}.1.5.3.1795898832199067808.0",
            SUBJECTS.agency(b, "complaint_assigned"),
        ):
            assert not allowed(a, "publish", subject), subject
        for subject in (SUBJECTS.agency(b, "complaint_assigned"), f"_INBOX_{b}.abc.1"):
            assert not allowed(a, "subscribe", subject), subject


@pytest.mark.parametrize(
    "subject",
    [
        # creating or changing any consumer, whatever its name or filter
        f"$JS.API.CONSUMER.CREATE.{STREAM}",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.agency_dpupr",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.agency_dpupr.lapor.agency.dpupr.>",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.agency_dpupr.lapor.agency.dlh.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.agency_dpupr",
        f"$JS.API.CONSUMER.DELETE.{STREAM}.agency_dpupr",
        f"$JS.API.CONSUMER.LIST.{STREAM}",
        # reading single messages and stream contents
        f"$JS.API.STREAM.MSG.GET.{STREAM}",
        f"$JS.API.DIRECT.GET.{STREAM}",
        f"$JS.API.DIRECT.GET.{STREAM}.lapor.agency.dlh.complaint_assigned",
        f"$JS.API.STREAM.INFO.{STREAM}",
        f"$JS.API.STREAM.MSG.GET.{SUBJECTS.events_stream}",
        f"$JS.API.DIRECT.GET.{SUBJECTS.events_stream}",
        f"$JS.API.CONSUMER.MSG.NEXT.{SUBJECTS.events_stream}.tracker",
        "$JS.API.STREAM.NAMES",
        # writing into any stream
        SUBJECTS.complaint("LPR-1", "received"),
        SUBJECTS.agency("dpupr", "complaint_assigned"),
        SUBJECTS.reporter("LPR-1"),
        SUBJECTS.dead_letter("router"),
    ],
)
def test_agency_may_not_publish(subject: str) -> None:
    assert not allowed("dpupr", "publish", subject)


@pytest.mark.parametrize(
    "subject",
    [
        "_INBOX.abc.1",  # replies to the services
        SUBJECTS.agency("dpupr", "complaint_assigned"),  # JetStream only, through its durable
        SUBJECTS.complaint("LPR-1", "received"),
        SUBJECTS.reporter("LPR-1"),
        "$JS.EVENT.ADVISORY.CONSUMER.CREATED.X.Y",
    ],
)
def test_agency_may_not_subscribe(subject: str) -> None:
    assert not allowed("dpupr", "subscribe", subject)


def test_only_trailing_wildcards_and_only_on_own_ack_and_inbox() -> None:
    perms = natsauth.agency_permissions("dpupr", SUBJECTS)
    wild = [s for s in _all(perms) if "*" in s or ">" in s]
    assert sorted(wild) == sorted([f"$JS.ACK.{STREAM}.agency_dpupr.>", "_INBOX_dpupr.>"])


def test_consumer_config_is_pinned_to_the_agency_subjects() -> None:
    config = natsauth.agency_consumer_config("dpupr", SUBJECTS)
    assert config.name == config.durable_name == "agency_dpupr"
    assert config.filter_subject == "lapor.agency.dpupr.>"
    assert not config.filter_subjects


def test_empty_service_password_odd_codes_and_shared_keys_are_refused() -> None:
    key = natsauth.new_agency_key().public
    with pytest.raises(ValueError, match="empty service password"):
        natsauth.authorization(SUBJECTS, service_password="", agencies={})
    with pytest.raises(ValueError, match="service user"):
        natsauth.authorization(SUBJECTS, service_password="svc", agencies={"lapor": key})
    with pytest.raises(ValueError, match="not an OPD code"):
        natsauth.authorization(SUBJECTS, service_password="svc", agencies={"a.b": key})
    with pytest.raises(ValueError, match="one public key for two agencies"):
        natsauth.authorization(
            SUBJECTS, service_password="svc", agencies={"dpupr": key, "dlh": key}
        )


def test_write_private_is_owner_only_and_replaces_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "users.conf"
    path.write_text("old")
    os.chmod(path, 0o644)
    natsauth.write_private(path, "secret")
    assert path.read_text() == "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["users.conf"]  # no temporary left


def _all(perms: dict) -> list[str]:
    return [s for kind in perms.values() for rule in kind.values() for s in rule]
