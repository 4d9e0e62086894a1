"""Tracking IDs (nomor tiket): ten Crockford base-32 characters in two groups, e.g.
``7K3MQ-9X2AB``. No I, L, O or U, so it can be read out on the phone and typed from an SMS
without confusion; 50 bits, so collisions are rare and, being checked on append, harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATTERN = r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$"
_BITS = 50


def _format(n: int) -> str:
    chars = [ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(_BITS // 5))]
    return "".join(chars[:5]) + "-" + "".join(chars[5:])


def new_tracking_id() -> str:
    return _format(secrets.randbits(_BITS))


def tracking_id_for(secret: str, key: str, attempt: int = 0) -> str:
    """The tracking ID a request with this idempotency key gets on its ``attempt``-th try
    (a later attempt only when an earlier ID is taken by another key).

    An HMAC keyed with the deployment's ``secret``: a key is no secret (it sits in client
    logs, retry queues, the README's example), and an unkeyed hash of it would let anyone
    who knows it derive the ID and read the complaint's status.
    """
    message = f"tracking-id:{attempt}:{key}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return _format(int.from_bytes(digest[:8]) >> (64 - _BITS))


def normalise(text: str) -> str:
    """What a person might type for an ID: lower case, spaces, O for 0, I/L for 1."""
    cleaned = text.strip().upper().replace(" ", "").replace("-", "")
    cleaned = cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    return f"{cleaned[:5]}-{cleaned[5:]}" if len(cleaned) == 10 else text
