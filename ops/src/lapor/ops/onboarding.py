"""The agencies a deployment has onboarded, with their NATS credentials: the state behind
``lapor agency`` and ``lapor nats-users``.

One JSON file (``agencies.json`` by default; in Kubernetes the Secret ``lapor-agencies``)
records, for the deployment's subject root:

* the ops user's (``lapor``) password and each service role's (``intake``, ``router``,
  ``tracker``, ``analytics``), as bcrypt hashes;
* each onboarded agency: its OPD code, who its credential was issued to, its **public**
  nkey, when it was added and last rotated;
* every public key revoked (rotated or removed), with when and why: an audit trail.

It holds no secret that opens anything: seeds and the service password are written once,
to their own files (mode 0600), and never kept here. The NATS users file
(:meth:`State.users_config`) is generated from it, so that adding, rotating or removing
one agency leaves every other credential as it was.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lapor.ops import natsauth
from lapor.shared.registry import Registry
from lapor.shared.subjects import Subjects

FORMAT = "lapor-agencies/1"
SEED_SUFFIX = ".nk"


@dataclass
class Agency:
    """An onboarded agency: whose credential it is and the key the server knows."""

    opd: str
    public_key: str
    holder: str
    added_at: str
    rotated_at: str | None = None


@dataclass
class Revoked:
    """A public key no longer accepted (``reason``: ``rotated`` or ``removed``)."""

    opd: str
    public_key: str
    revoked_at: str
    reason: str


@dataclass
class State:
    """What ``agencies.json`` holds (see the module's documentation)."""

    subject_root: str
    deployment: str
    service_password_hash: str | None = None
    """The ops user's (``lapor``); the only service user of files written before the
    per-service users, kept as it was when such a file is loaded."""
    service_users: dict[str, str] = field(default_factory=dict)
    """Each service role's password hash (``natsauth.SERVICE_ROLES``)."""
    agencies: dict[str, Agency] = field(default_factory=dict)
    revoked: list[Revoked] = field(default_factory=list)

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.subject_root)

    # --- the file -------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, *, subject_root: str, deployment: str) -> State:
        """The state in ``path``, or a new one for this subject root and deployment if
        there is no file yet. A file made for another root or deployment is refused: its
        users would name other streams, or units of another registry."""
        if not path.exists():
            return cls(subject_root=subject_root, deployment=deployment)
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not an agencies file of format {FORMAT}")
        state = cls(
            subject_root=data["subject_root"],
            deployment=data["deployment"],
            service_password_hash=data.get("service_password_hash"),
            service_users=dict(data.get("service_users") or {}),
            agencies={a["opd"]: Agency(**a) for a in data.get("agencies", [])},
            revoked=[Revoked(**r) for r in data.get("revoked", [])],
        )
        if state.subject_root != subject_root:
            raise ValueError(
                f"{path} is for subject root {state.subject_root!r}, "
                f"not {subject_root!r} (LAPOR_SUBJECT_ROOT)"
            )
        if state.deployment != deployment:
            raise ValueError(
                f"{path} is for deployment {state.deployment!r}, "
                f"not {deployment!r} (LAPOR_DEPLOYMENT)"
            )
        if state.service_password_hash is not None and not natsauth.is_password_hash(
            state.service_password_hash
        ):
            raise ValueError(f"{path}: service_password_hash is not a bcrypt hash")
        for role, digest in state.service_users.items():
            if role not in natsauth.SERVICE_ROLES or not natsauth.is_password_hash(digest):
                raise ValueError(f"{path}: service_users: {role!r} is not a role with a hash")
        for agency in state.agencies.values():
            natsauth.check_public_key(agency.public_key)
        return state

    def save(self, path: Path) -> None:
        """Write the state (mode 0600; replaced in one step)."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "subject_root": self.subject_root,
            "deployment": self.deployment,
            "service_password_hash": self.service_password_hash,
            "service_users": dict(sorted(self.service_users.items())),
            "agencies": [asdict(self.agencies[opd]) for opd in sorted(self.agencies)],
            "revoked": [asdict(r) for r in self.revoked],
        }
        natsauth.write_private(path, json.dumps(data, indent=2) + "\n")

    def users_config(self) -> str:
        """The NATS users file: the ops user, each service's user, every onboarded
        agency."""
        missing = self.missing_roles()
        if missing:
            raise ValueError(
                f"no password yet for the user(s) of {', '.join(missing)}: "
                "run `lapor nats-users USERS_FILE --state STATE` first"
            )
        assert self.service_password_hash is not None
        return natsauth.authorization_config(
            self.subjects,
            service_password=self.service_password_hash,
            service_passwords=self.service_users,
            agencies={opd: a.public_key for opd, a in self.agencies.items()},
        )

    def missing_roles(self) -> list[str]:
        """The roles (``natsauth.ROLES``) whose user has no password yet."""
        missing = [role for role in natsauth.SERVICE_ROLES if role not in self.service_users]
        if self.service_password_hash is None:
            missing.append(natsauth.OPS)
        return missing

    # --- changes ----------------------------------------------------------------------

    def new_service_password(self, role: str = natsauth.OPS) -> str:
        """A new password for the user of ``role`` (default the ops user ``lapor``); the
        state keeps only its hash. Returns the password, to be written to a private file
        and never printed."""
        natsauth.user_of(role)
        password = secrets.token_urlsafe(32)
        digest = natsauth.hash_password(password)
        if role == natsauth.OPS:
            self.service_password_hash = digest
        else:
            self.service_users[role] = digest
        return password

    def add(
        self, registry: Registry, opd: str, holder: str, now: datetime | None = None
    ) -> natsauth.AgencyKey:
        """Onboard a unit of the deployment's registry; returns its new key (hand over the
        seed). A unit onboarded already is refused: that is what :meth:`rotate` is for."""
        if opd in (natsauth.SERVICE_USER, *natsauth.ROLES):
            raise ValueError(f"an OPD code may not be {opd!r}: it is a service user")
        unit = registry.get(opd)
        if unit is None:
            raise ValueError(
                f"{opd!r} is not a unit of the OPD registry of deployment {self.deployment!r}: "
                "the router never disposes a complaint to it (see `lapor agency add --help`)"
            )
        if opd in self.agencies:
            raise ValueError(f"{opd} is onboarded already: `lapor agency rotate {opd}`")
        key = natsauth.new_agency_key()
        self.agencies[opd] = Agency(
            opd=opd, public_key=key.public, holder=holder or unit.name, added_at=_stamp(now)
        )
        return key

    def rotate(self, opd: str, now: datetime | None = None) -> natsauth.AgencyKey:
        """A new key for ``opd``; the old one is revoked (refused once NATS reloads)."""
        agency = self._onboarded(opd)
        key = natsauth.new_agency_key()
        self.revoked.append(Revoked(opd, agency.public_key, _stamp(now), "rotated"))
        agency.public_key, agency.rotated_at = key.public, _stamp(now)
        return key

    def remove(self, opd: str, now: datetime | None = None) -> Agency:
        """Offboard ``opd``: its key is revoked. Returns what it was."""
        agency = self._onboarded(opd)
        del self.agencies[opd]
        self.revoked.append(Revoked(opd, agency.public_key, _stamp(now), "removed"))
        return agency

    def _onboarded(self, opd: str) -> Agency:
        agency = self.agencies.get(opd)
        if agency is None:
            onboarded = ", ".join(sorted(self.agencies)) or "none"
            raise ValueError(f"{opd} is not onboarded (onboarded: {onboarded})")
        return agency


def seed_path(credentials_dir: Path, opd: str) -> Path:
    """Where an agency's seed is written: ``<dir>/<opd>.nk``."""
    return credentials_dir / f"{opd}{SEED_SUFFIX}"


def write_seed(credentials_dir: Path, opd: str, key: natsauth.AgencyKey) -> Path:
    """Write an agency's seed, the only copy, readable by the operator alone (the folder
    0700, the file 0600); returns its path. The file holds the seed on one line, the form
    ``nats.connect(nkeys_seed=PATH)`` and ``nats --nkey PATH`` read."""
    credentials_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(credentials_dir, 0o700)
    path = seed_path(credentials_dir, opd)
    natsauth.write_private(path, key.seed + "\n")
    return path


def write_password(path: Path, password: str) -> None:
    """Write the service user's password (0600), the only copy."""
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    natsauth.write_private(path, password + "\n")


def write_password_in(directory: Path, role: str, password: str) -> Path:
    """Write a service user's password to ``<directory>/<role>`` (the folder 0700, the
    file 0600), the only copy; returns its path."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / role
    natsauth.write_private(path, password + "\n")
    return path


def _stamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
