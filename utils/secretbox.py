"""Secrets kept in MariaDB only encrypted (Telegram sessions, Planfix tokens), and
client tokens only hashed.

The key comes from a setting (TG_ACCOUNTS_KEY): a random string of at least 32
characters (config.py refuses a shorter or a repetitive one). The keys are derived from
it with scrypt (slow and memory-hard: a stolen database does not let anyone try
passphrases quickly) — once per process and key, then cached. Sealed values carry
their key version (`v2:`); a value sealed before (`gAAAA…`: a Fernet key that was a
bare SHA-256 of the setting) still opens, and `needs_reseal` says it should be sealed
again (the accounts process does so at start), so an upgrade loses no session.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

MIN_KEY_LENGTH = 32
VERSION = "v2:"
# scrypt: 2**15 × 8 × 128 B = 32 MiB and ~0.1 s, once per process.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
_SALT = b"keepdesk-secretbox-v2"


def key_problem(passphrase: str | None) -> str | None:
    """Why this TG_ACCOUNTS_KEY is too weak, or None when it is strong enough."""
    if not passphrase:
        return "is required"
    if len(passphrase) < MIN_KEY_LENGTH:
        return (f"must be at least {MIN_KEY_LENGTH} characters of random text (e.g. "
                "`python -c \"import secrets;print(secrets.token_urlsafe(32))\"`)")
    if len(set(passphrase)) < 8:
        return "must be random text, not a repeated pattern"
    return None


@functools.lru_cache(maxsize=8)
def _keys(passphrase: str) -> tuple[bytes, bytes]:
    """(encryption key, MAC key) of the current version: scrypt, then split."""
    master = hashlib.scrypt(passphrase.encode("utf-8"), salt=_SALT, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    encryption = hmac.new(master, b"keepdesk-secretbox:fernet", hashlib.sha256).digest()
    mac = hmac.new(master, b"keepdesk-secretbox:mac", hashlib.sha256).digest()
    return encryption, mac


def _legacy_fernet(passphrase: str) -> Fernet:
    """The key of values sealed before key versioning (a bare SHA-256 of the setting)."""
    digest = hashlib.sha256(b"keepdesk-secretbox:" + passphrase.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SecretBox:
    def __init__(self, passphrase: str) -> None:
        if not passphrase:
            raise ValueError("an encryption key is required")
        encryption, self._mac_key = _keys(passphrase)
        self._fernet = Fernet(base64.urlsafe_b64encode(encryption))
        self._legacy = _legacy_fernet(passphrase)

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def seal(self, plain: str) -> str:
        return VERSION + self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The plain text; ValueError when the key changed or the value was tampered with.
        A value sealed with the former derivation opens too."""
        try:
            if sealed.startswith(VERSION):
                return self._fernet.decrypt(sealed[len(VERSION):].encode("ascii")).decode("utf-8")
            return self._legacy.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError("cannot decrypt: wrong key or damaged value") from exc

    @staticmethod
    def needs_reseal(sealed: str | None) -> bool:
        """Sealed with the former derivation: open and seal again."""
        return bool(sealed) and not sealed.startswith(VERSION)

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
