"""A key per purpose, from one master secret (SECRET_KEY).

Each purpose — the WhatsApp file links offered to Devino, the attachment links given to
Planfix and shown in desk posts — signs with a key of its own, derived from the
master secret with HKDF-SHA256 (the purpose is HKDF's `info`). A key that leaks for one
purpose (a link in a proxy log) says nothing about another, and no key is a secret a
partner already knows (LINK_KEY is in the CRM's settings and in every /messages/ URL).

    key = derive(settings, MEDIA_LINKS)        # 32 bytes, the same in every process

The master secret is SECRET_KEY. Where KeepDesk has no public address (no PUBLIC_URL, no
WEBHOOK_URL: `make run` on a laptop, the playground) and none is set, one is made on
first use and kept in `var/keys/secret_key` (0600 in a 0700 folder), shared by every
process of that var/ folder. With a public address a missing or weak SECRET_KEY stops
start-up (config.py says so, naming it); `master_secret` refuses too, whatever built the
settings.
"""
from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from utils.private_files import private_folder, read_secret

# The purposes. A new purpose is a new string: its key is unrelated to every other.
FILE_LINKS = "whatsapp-file-links"      # /whatsapp/files/<id>: files offered to Devino
MEDIA_LINKS = "media-links"             # /media/<id>: attachments given to Planfix
WA_ACCOUNTS = "whatsapp-panel-accounts"  # the gateway tokens of accounts added in the panel
PURPOSES = (FILE_LINKS, MEDIA_LINKS, WA_ACCOUNTS)

KEY_FILE = Path("keys") / "secret_key"  # under var_dir
MIN_LENGTH = 32
MIN_DISTINCT = 10


class MasterSecretError(RuntimeError):
    """No usable master secret; the message names SECRET_KEY."""


def weakness(secret: str) -> str | None:
    """Why `secret` is too weak to be a master secret, or None. Not a real entropy
    measure: it refuses the obvious (short, few distinct characters, a repeated unit)."""
    if len(secret) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(set(secret)) < MIN_DISTINCT:
        return f"must have at least {MIN_DISTINCT} different characters"
    if (secret + secret).find(secret, 1) < len(secret):
        return "must not be one short part repeated"
    return None


def generate() -> str:
    """A new master secret (256 random bits)."""
    return secrets.token_urlsafe(32)


def master_secret(settings) -> bytes:
    """SECRET_KEY, or (without a public address) the one kept under var/."""
    configured = getattr(settings, "secret_key", "") or ""
    if configured:
        problem = weakness(configured)
        if problem:
            raise MasterSecretError(f"SECRET_KEY is too weak: {problem}")
        return configured.encode("utf-8")
    if getattr(settings, "public_url", None) or getattr(settings, "webhook_url", None):
        raise MasterSecretError("SECRET_KEY is required when PUBLIC_URL or WEBHOOK_URL is set")
    return _kept(Path(settings.var_dir) / KEY_FILE).encode("utf-8")


def derive(settings, purpose: str) -> bytes:
    """The 32-byte key of `purpose` (HKDF-SHA256 of the master secret)."""
    return derive_from(master_secret(settings), purpose)


@lru_cache(maxsize=64)
def derive_from(master: bytes, purpose: str) -> bytes:
    if not purpose:
        raise ValueError("a key needs a purpose")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"keepdesk/" + purpose.encode("utf-8")).derive(master)


@lru_cache(maxsize=8)
def _kept(path: Path) -> str:
    """The secret kept at `path`, made (0600, folder 0700) if there is none yet; read once
    per process (links are made and checked on every file request)."""
    private_folder(path.parent)
    value = read_secret(path, generate)
    problem = weakness(value)
    if problem:
        raise MasterSecretError(f"the kept master secret {path} is unusable ({problem}): delete it or set SECRET_KEY")
    return value
