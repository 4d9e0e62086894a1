"""Cross-site request forgery: a signed double-submit token (standard library only).

The form page sets the cookie ``csrf`` to ``<nonce>.<HMAC(key, nonce)>`` and puts the
same token in a hidden field. A POST is accepted only when the field equals the cookie
and the signature is the key's: another site can make a browser send the cookie but can
neither read it nor forge a signed one (a subdomain planting a cookie would need the
key). Nothing is stored, so any replica checks any token. The key derives from
``LAPOR_AUTH_SECRET``; without it a random key per process (local use only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "csrf"
FIELD = "csrf_token"


class Csrf:
    def __init__(self, secret: str | None) -> None:
        material = (secret or secrets.token_hex(32)).encode()
        self._key = hmac.new(material, b"lapor-portal-csrf", hashlib.sha256).digest()

    def _sign(self, nonce: str) -> str:
        mac = hmac.new(self._key, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, token: str | None) -> bool:
        if not token or token.count(".") != 1:
            return False
        nonce, signature = token.split(".")
        return hmac.compare_digest(signature, self._sign(nonce))

    def check(self, cookie: str | None, field: str | None) -> bool:
        """The double submit: the field is the cookie, and the cookie is ours."""
        return (
            bool(cookie and field)
            and hmac.compare_digest(str(cookie), str(field))
            and self.valid(cookie)
        )
