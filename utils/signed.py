"""Short-lived signed links (a general facility of the integrations door).

A link `…/media/<ref>?e=<expiry>&s=<signature>` opens one stored file until its expiry,
for whoever holds it — Planfix downloading a customer's photo, a desk post showing it,
Devino fetching a file a manager sent — and nothing else: the signature covers the path
and the expiry (HMAC-SHA256), is compared in constant time, and an expired or altered
link gets 403. Every link carries its expiry. The key is the link's purpose's own
(`utils.keys.derive(settings, keys.MEDIA_LINKS)`, `keys.FILE_LINKS`), never a secret a
partner knows or one that shows in URLs (LINK_KEY).

    link = signed_url(base, "/media/42", key, ttl=3600)
    verify("/media/42", expires, signature, key)  # True / False

Nothing here knows what the path serves; a door route checks and serves it.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


def _signature(path: str, expires: int, key: bytes) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode("utf-8"), hashlib.sha256).hexdigest()


def sign(path: str, key: bytes, *, ttl: float, now: float | None = None) -> dict[str, str]:
    """The query parameters that make `path` open until now + ttl."""
    expires = int((now if now is not None else time.time()) + ttl)
    return {"e": str(expires), "s": _signature(path, expires, key)}


def signed_url(base: str, path: str, key: bytes, *, ttl: float, now: float | None = None) -> str:
    return f"{base.rstrip('/')}{path}?{urlencode(sign(path, key, ttl=ttl, now=now))}"


def verify(path: str, expires: str | None, signature: str | None, key: bytes, *,
           now: float | None = None) -> bool:
    """The link is ours, unaltered, and not expired."""
    if not expires or not signature or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < (now if now is not None else time.time()):
        return False
    expected = _signature(path, int(expires), key)
    try:
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii"))
    except UnicodeEncodeError:
        return False
