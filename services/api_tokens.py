"""1C API tokens (CHANNELS.md §2): issued by admins (`python -m bot api-token create NAME`),
stored hashed, compared in constant time.

A token is 32 random bytes (urlsafe base64, prefixed "kd1_"). Only its SHA-256 is kept:
with 256 bits of entropy nobody can search the hash space, so a slow password hash
(argon2) would add ~50 ms to every 1C request and nothing to safety; a keyed hash would
need a pepper setting that, lost, locks 1C out. A request's token is hashed, looked up
by the hash, and the stored hash compared with `hmac.compare_digest`.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from models.db import Database
from models.whatsapp import ApiToken, ApiTokenRepository

PREFIX = "kd1_"
MAX_TOKEN = 200


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class ApiTokens:
    def __init__(self, db: Database) -> None:
        self.repo = ApiTokenRepository(db)

    def create(self, name: str) -> str:
        name = name.strip()[:64]
        if not name:
            raise ValueError("a token needs a name (who uses it: e.g. 1c-clinic)")
        token = PREFIX + secrets.token_urlsafe(32)
        self.repo.add(name, digest(token))
        return token

    def valid(self, token: object) -> bool:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            return False
        wanted = digest(token)
        found = self.repo.find(wanted)
        if found is None or not hmac.compare_digest(found[1].encode(), wanted.encode()):
            return False
        self.repo.used(found[0])
        return True

    def all(self) -> list[ApiToken]:
        return self.repo.all()

    def revoke(self, which: str) -> int:
        """`#N`: the token with id N; anything else: the tokens with exactly that name. The
        two never mix, so a token named "7" is not the token #7."""
        which = which.strip()
        if which.startswith("#") and which[1:].isdigit():
            return self.repo.revoke_id(int(which[1:]))
        return self.repo.revoke_name(which)

    def revoke_id(self, token_id: int) -> int:
        """The panel's Revoke button: exactly the token with this id."""
        return self.repo.revoke_id(token_id)
