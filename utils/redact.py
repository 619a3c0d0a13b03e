"""Secrets out of every text we keep or print: log lines, stored job errors, reports.

The process registers its secrets once at start-up (`register`, called by
`configure_logging` and by `Container.build`); `redact(text)` then hides each of them, plus
what looks like a secret whatever its value: a bot token in a Bot API URL and a CRM
session token in a query string. A network error's text quotes the request URL, and a
Telegram URL carries the bot token, so anything stored from an exception goes through here.
"""
from __future__ import annotations

import re
import threading
from typing import Iterable

MARK = "***"
_MIN_SECRET = 4

# "…/bot123456:AAE…/sendMessage" — any bot token, registered or not.
_BOT_TOKEN = re.compile(r"(?<![0-9])\d{3,12}:[A-Za-z0-9_-]{20,}\b")  # also right after "/bot"
# "?token=…" / "&token=…" — the CRM's session token changes at every login.
_TOKEN_PARAM = re.compile(r"((?:^|[?&\s])token=)[^&\s\"']+", re.IGNORECASE)

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register(secrets: Iterable[str]) -> None:
    """Add secrets to hide (longest first, so a secret containing another is hidden whole)."""
    global _secrets
    with _lock:
        merged = set(_secrets) | {s for s in secrets if s and len(s) >= _MIN_SECRET}
        _secrets = tuple(sorted(merged, key=len, reverse=True))


def registered() -> tuple[str, ...]:
    return _secrets


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every registered (and `extra`) secret replaced by ***."""
    if not text:
        return text
    for secret in (*_secrets, *sorted((s for s in extra if s and len(s) >= _MIN_SECRET),
                                      key=len, reverse=True)):
        if secret in text:
            text = text.replace(secret, MARK)
    text = _BOT_TOKEN.sub(MARK, text)
    return _TOKEN_PARAM.sub(r"\1" + MARK, text)
