"""Who is calling: signed tokens for admins and agency officers, and the reporter's secret.

Tokens are JWTs (HS256, PyJWT) signed with ``LAPOR_AUTH_SECRET``; the subject names the
role and, for an officer, the unit: ``admin``, ``agency:dpupr``. A reporter proves a
complaint is theirs with the secret intake handed out with the tracking ID: an HMAC of the
tracking ID, so nothing has to be stored and a retried submission gets the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Annotated

import jwt
from fastapi import Depends, Header, HTTPException, Request, status
from pydantic import ValidationError

from lapor.shared.events import Actor
from lapor.shared.registry import load_registry

ALGORITHM = "HS256"
ISSUER = "lapor"


class InvalidToken(Exception):
    pass


DEFAULT_TTL = 24 * 3600
MAX_TTL = 30 * 24 * 3600
"""The longest a token lives: a lost one stops working within a month at most. Enforced
when a token is checked too, so no token minted otherwise outlives it."""
REQUIRED_CLAIMS = ["iss", "sub", "iat", "exp"]


def issue_token(
    secret: str,
    role: str,
    opd: str | None = None,
    name: str | None = None,
    ttl: int = DEFAULT_TTL,
) -> str:
    """A token for an ``admin`` or an ``agency`` officer of ``opd`` (a unit of the OPD
    registry), valid ``ttl`` seconds, at most ``MAX_TTL``. (A ``ttl`` of zero or less
    gives a token that has already expired: tests use one; ``lapor token`` refuses it.)"""
    if role not in ("admin", "agency") or (role == "agency") != (opd is not None):
        raise ValueError("tokens are for admins, and for agency officers with their OPD")
    if opd is not None and opd not in load_registry():
        raise ValueError(f"no unit {opd!r} in the OPD registry")
    if ttl > MAX_TTL:
        raise ValueError(f"a token lives at most {MAX_TTL // 86400} days ({MAX_TTL} s)")
    try:
        Actor(role=role, opd=opd, name=name)  # what the token will be read back as
    except ValidationError as e:
        raise ValueError(
            "; ".join(f"{err['loc'][0]}: {err['msg']}" for err in e.errors())
        ) from None
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": f"agency:{opd}" if opd else "admin", "iat": now}
    claims["exp"] = now + ttl
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def actor_from_token(secret: str, token: str) -> Actor:
    """The admin or officer a token names; ``InvalidToken`` unless it is signed with
    ``secret``, issued by lapor, and carries a subject, an issue and an expiry time no more
    than ``MAX_TTL`` apart (a token without ``exp`` would never expire)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as e:
        raise InvalidToken(str(e)) from e
    if claims["exp"] - claims["iat"] > MAX_TTL:
        raise InvalidToken("lives longer than a token may")
    subject = claims["sub"]
    role, _, opd = subject.partition(":") if isinstance(subject, str) else ("", "", "")
    if (role, bool(opd)) not in (("admin", False), ("agency", True)):
        raise InvalidToken("tokens name an admin or an agency officer")
    try:
        return Actor(role=role, opd=opd or None, name=claims.get("name"))
    except ValueError as e:
        raise InvalidToken("malformed subject") from e


def reporter_secret(secret: str, tracking_id: str) -> str:
    """The reporter's proof of ownership: 16 characters, readable out on the phone."""
    digest = hmac.new(secret.encode(), f"reporter:{tracking_id}".encode(), hashlib.sha256)
    return base64.b32encode(digest.digest()).decode()[:16]


def is_reporter(secret: str, tracking_id: str, given: str | None) -> bool:
    expected = reporter_secret(secret, tracking_id)
    return given is not None and hmac.compare_digest(expected, given.strip().upper())


def _secret(request: Request) -> str:
    secret = request.app.state.runtime.settings.auth_secret
    if secret is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "authentication not configured")
    return secret.get_secret_value()


async def authenticated(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Actor:
    """FastAPI dependency: the admin or officer behind the bearer token, or 401. (Dependencies
    here are ``async def``: FastAPI runs a plain ``def`` one in a thread pool, a hand-off that
    cost intake more than its own work.)"""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return actor_from_token(_secret(request), token)
    except InvalidToken:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None


AuthenticatedActor = Annotated[Actor, Depends(authenticated)]


async def auth_secret_of(request: Request) -> str:
    """FastAPI dependency: the deployment's signing secret."""
    return _secret(request)
