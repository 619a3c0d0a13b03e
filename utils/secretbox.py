"""Secrets kept in MariaDB only encrypted (Telegram sessions, Planfix tokens), and
client tokens only hashed.

The key comes from a setting (TG_ACCOUNTS_KEY): any long string; a Fernet key is
derived from it (SHA-256), so an operator need not produce Fernet's exact format.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, passphrase: str) -> None:
        if not passphrase:
            raise ValueError("an encryption key is required")
        digest = hashlib.sha256(b"keepdesk-secretbox:" + passphrase.encode("utf-8")).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._mac_key = hashlib.sha256(b"keepdesk-mac:" + passphrase.encode("utf-8")).digest()

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The plain text; ValueError when the key changed or the value was tampered with."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError("cannot decrypt: wrong key or damaged value") from exc

    def derive(self, purpose: str) -> bytes:
        """A key of its own for one purpose (e.g. signing links), from the same setting."""
        return hmac.new(self._mac_key, f"derive:{purpose}".encode("utf-8"), hashlib.sha256).digest()

    def mac(self, purpose: str, message: str) -> str:
        """A keyed MAC of `message` for one purpose (signed links, the control interface)."""
        return hmac.new(self._mac_key, f"{purpose}\n{message}".encode("utf-8"),
                        hashlib.sha256).hexdigest()


def new_token() -> str:
    """A client token: 256 random bits, URL- and header-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a client token. The token is random and long, so a plain hash
    (no slow KDF) cannot be brute-forced."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(token: str | None, stored: str | None) -> bool:
    if not token or not stored:
        return False
    return hmac.compare_digest(token_hash(token), stored)
