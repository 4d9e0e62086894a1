"""``lapor agency`` and ``lapor nats-users`` without a server: the agencies file, the users
file generated from it, the seeds written to private files, one agency's change leaving
the others' credentials as they were, and no secret in what the commands print."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lapor.ops import natsauth, onboarding
from lapor.services.cli import main
from lapor.shared.registry import load_registry

REGISTRY = load_registry()
A, B, C = (unit.code for unit in REGISTRY.units[:3])
SEED = re.compile(r"SU[A-Z2-7]{50}")
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def new_state() -> onboarding.State:
    state = onboarding.State(subject_root="lapor", deployment="kota_pontianak")
    state.service_password_hash = natsauth.hash_password("svc", rounds=4)
    for role in natsauth.SERVICE_ROLES:
        state.service_users[role] = natsauth.hash_password(f"svc-{role}", rounds=4)
    return state


def users_of(state: onboarding.State) -> dict[str, str]:
    """nkey → the subject its permissions are for, from the generated users file."""
    users = json.loads(state.users_config())["authorization"]["users"]
    return {u["nkey"]: u["permissions"]["subscribe"]["allow"][0] for u in users if "nkey" in u}


# --- the state --------------------------------------------------------------------------


def test_add_rotate_remove_change_one_agency_and_keep_the_others() -> None:
    state = new_state()
    key_a = state.add(REGISTRY, A, "Rina", NOW)
    key_b = state.add(REGISTRY, B, "", NOW)
    assert state.agencies[A].holder == "Rina"
    assert state.agencies[B].holder == REGISTRY.get(B).name  # by default the unit's name
    assert users_of(state) == {key_a.public: f"_INBOX_{A}.>", key_b.public: f"_INBOX_{B}.>"}

    new_a = state.rotate(A, NOW)
    assert new_a.public != key_a.public
    assert users_of(state) == {new_a.public: f"_INBOX_{A}.>", key_b.public: f"_INBOX_{B}.>"}
    assert state.agencies[A].rotated_at == "2026-12-07T08:00:00+00:00"

    state.remove(B, NOW)
    assert users_of(state) == {new_a.public: f"_INBOX_{A}.>"}
    assert [(r.opd, r.public_key, r.reason) for r in state.revoked] == [
        (A, key_a.public, "rotated"),
        (B, key_b.public, "removed"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.add(REGISTRY, "no_such_unit", ""), "not a unit of the OPD registry"),
        (lambda s: s.add(REGISTRY, "lapor", ""), "may not be 'lapor'"),
        (lambda s: s.add(REGISTRY, A, ""), f"{A} is onboarded already"),
        (lambda s: s.rotate(B), f"{B} is not onboarded \\(onboarded: {A}\\)"),
        (lambda s: s.remove(B), f"{B} is not onboarded"),
    ],
)
def test_what_cannot_be_done_is_refused_and_changes_nothing(change, message: str) -> None:
    state = new_state()
    state.add(REGISTRY, A, "", NOW)
    before = state.users_config()
    with pytest.raises(ValueError, match=message):
        change(state)
    assert state.users_config() == before


def test_no_users_file_without_the_service_user() -> None:
    state = onboarding.State(subject_root="lapor", deployment="kota_pontianak")
    state.add(REGISTRY, A, "", NOW)
    with pytest.raises(ValueError, match="lapor nats-users"):
        state.users_config()


def test_the_state_file_round_trips_holds_no_secret_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "agencies.json"
    state = new_state()
    key = state.add(REGISTRY, A, "Rina", NOW)
    state.rotate(A, NOW)
    state.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.seed not in path.read_text() and not SEED.search(path.read_text())
    again = onboarding.State.load(path, subject_root="lapor", deployment="kota_pontianak")
    assert again == state


@pytest.mark.parametrize(
    ("root", "deployment", "message"),
    [
        ("other", "kota_pontianak", "for subject root 'lapor', not 'other'"),
        ("lapor", "kabupaten_kubu_raya", "for deployment 'kota_pontianak'"),
    ],
)
def test_a_state_file_of_another_root_or_deployment_is_refused(
    tmp_path: Path, root: str, deployment: str, message: str
) -> None:
    path = tmp_path / "agencies.json"
    new_state().save(path)
    with pytest.raises(ValueError, match=message):
        onboarding.State.load(path, subject_root=root, deployment=deployment)


def test_a_tampered_key_in_the_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agencies.json"
    state = new_state()
    state.add(REGISTRY, A, "", NOW)
    state.save(path)
    data = json.loads(path.read_text())
    data["agencies"][0]["public_key"] = "UNOTAKEY"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a public user nkey"):
        onboarding.State.load(path, subject_root="lapor", deployment="kota_pontianak")


# --- the commands ---------------------------------------------------------------------


@pytest.fixture
def lapor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]):
    """``lapor ARGS…`` in ``tmp_path``: (exit code, stdout, stderr) of the process."""
    for name in list(os.environ):
        if name.startswith(("NATS_", "DATABASE_", "LAPOR_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LAPOR_DATA_DIR", str(tmp_path / ".lapor"))
    monkeypatch.setenv("LAPOR_INFRA", "none")
    monkeypatch.chdir(tmp_path)
    # The command points the process's logging at this test's captured stderr, closed once
    # the test ends: later tests would log into a closed file.
    monkeypatch.setattr("lapor.services.cli.configure_logging", lambda *args: None)
    monkeypatch.setattr(natsauth, "BCRYPT_ROUNDS", 4)

    def run(*argv: str) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main(list(argv))
        out, err = capfd.readouterr()
        assert not SEED.search(out + err), out + err
        return code, out, err

    return run


def test_add_before_the_service_user_is_refused_and_writes_nothing(lapor, tmp_path: Path) -> None:
    code, out, err = lapor("agency", "add", A)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "lapor agency: no password yet for the user(s) of intake, router, tracker, analytics, "
        "portal, open311, ops: run `lapor nats-users USERS_FILE --state STATE` first"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_operators_round(lapor, tmp_path: Path) -> None:
    code, out, _ = lapor("nats-users", "users.conf", "--no-consumers")
    assert code == 0
    password = (tmp_path / "nats-service-password").read_text().strip()
    assert password not in out and "nats-service-password (mode 0600)" in out
    first_hash = json.loads((tmp_path / "agencies.json").read_text())["service_password_hash"]
    passwords = {}
    for role in natsauth.SERVICE_ROLES:
        path = tmp_path / "nats-passwords" / role
        passwords[role] = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert passwords[role] not in out and f"nats-passwords/{role} (mode 0600)" in out
        assert f"tls://{role}:<that password>@<host>:4222 (Secret lapor-nats-{role})" in out
    assert stat.S_IMODE((tmp_path / "nats-passwords").stat().st_mode) == 0o700
    assert len(set(passwords.values()) | {password}) == len(natsauth.SERVICE_ROLES) + 1

    code, out, _ = lapor("agency", "add", A, "--name", "Rina", "--public-url", "nats://x:4222")
    assert code == 0
    seed_file = tmp_path / "agency-credentials" / f"{A}.nk"
    seed = seed_file.read_text().strip()
    assert seed not in out
    assert f"seed (the secret) written to {seed_file} (mode 0600)" in out
    assert f"lapor agency consumers {A}" in out
    assert (
        f"python examples/agency_client.py --server nats://x:4222 --opd {A} --seed {A}.nk"
        " --root lapor"
    ) in out
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(seed_file.parent.stat().st_mode) == 0o700
    public_a = natsauth.public_key_of(seed)
    assert lapor("agency", "add", B)[0] == 0
    public_b = natsauth.public_key_of((tmp_path / "agency-credentials" / f"{B}.nk").read_text())

    # nats-users again: the same service password, the agencies' keys kept.
    assert lapor("nats-users", "users.conf", "--no-consumers")[0] == 0
    state = json.loads((tmp_path / "agencies.json").read_text())
    assert state["service_password_hash"] == first_hash
    assert (tmp_path / "nats-service-password").read_text().strip() == password
    for role in natsauth.SERVICE_ROLES:
        assert (tmp_path / "nats-passwords" / role).read_text().strip() == passwords[role]
    users = (tmp_path / "users.conf").read_text()
    assert public_a in users and public_b in users and password not in users
    assert not any(p in users for p in passwords.values())
    names = [u.get("user") for u in json.loads(users)["authorization"]["users"]]
    assert names[:5] == ["lapor", "intake", "router", "tracker", "analytics"]

    code, out, _ = lapor("agency", "rotate", A)
    assert code == 0 and "from the reload on the old credential is refused" in out
    users = (tmp_path / "users.conf").read_text()
    assert public_a not in users and public_b in users

    code, out, _ = lapor("agency", "remove", B)
    assert code == 0 and f"{public_b} is revoked" in out
    assert not (tmp_path / "agency-credentials" / f"{B}.nk").exists()
    assert public_b not in (tmp_path / "users.conf").read_text()

    code, out, _ = lapor("agency", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "subject root lapor, deployment kota_pontianak, service users set"
    assert lines[1].startswith(f"{A}: {REGISTRY.get(A).name}; issued to Rina; added ")
    assert lines[2:] == ["revoked keys: 2 (listed in the agencies file)"]

    code, out, _ = lapor("nats-users", "users.conf", "--no-consumers", "--new-password", "router")
    assert code == 0 and "user router (router): new password" in out and "user intake" not in out
    assert (tmp_path / "nats-passwords" / "router").read_text().strip() != passwords["router"]
    assert (tmp_path / "nats-passwords" / "intake").read_text().strip() == passwords["intake"]
    assert (tmp_path / "nats-service-password").read_text().strip() == password

    assert lapor("nats-users", "users.conf", "--no-consumers", "--new-service-password")[0] == 0
    assert (tmp_path / "nats-service-password").read_text().strip() != password
    assert (tmp_path / "nats-passwords" / "intake").read_text().strip() != passwords["intake"]


def test_a_state_of_the_single_service_user_keeps_it_as_the_ops_user(lapor, tmp_path: Path) -> None:
    """Upgrading: an agencies file with only the old service user ``lapor`` keeps its
    password (now the ops user's) and gains the four services' users."""
    old = onboarding.State(subject_root="lapor", deployment="kota_pontianak")
    old.service_password_hash = natsauth.hash_password("old", rounds=4)
    old.save(tmp_path / "agencies.json")
    code, out, _ = lapor("nats-users", "users.conf", "--no-consumers")
    assert code == 0 and "user lapor" not in out
    assert not (tmp_path / "nats-service-password").exists()
    state = json.loads((tmp_path / "agencies.json").read_text())
    assert state["service_password_hash"] == old.service_password_hash
    assert sorted(state["service_users"]) == sorted(natsauth.SERVICE_ROLES)
    assert sorted(p.name for p in (tmp_path / "nats-passwords").iterdir()) == sorted(
        natsauth.SERVICE_ROLES
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["agency", "rotate", A], f"{A} is not onboarded"),
        (["agency", "remove", A], f"{A} is not onboarded"),
        (["agency", "add", "no_such_unit"], "'no_such_unit' is not a unit of the OPD registry"),
        (["agency", "consumers", "no_such_unit"], "not in the OPD registry: no_such_unit"),
    ],
)
def test_refusals_are_one_line(lapor, argv: list[str], message: str) -> None:
    assert lapor("nats-users", "users.conf", "--no-consumers")[0] == 0
    code, out, err = lapor(*argv)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and message in err, err
