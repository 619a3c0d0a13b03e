"""What the WhatsApp providers share on the wire: a requests session per thread (a
session is not safe to share between threads), and the bounded download of a customer's
file through the guarded fetcher — its address checked, its size and its time capped, a 5xx
or a broken connection transient (the step is retried), any other answer a refusal."""
from __future__ import annotations

import threading

import requests

from channels.base import Rejected, Unavailable
from utils.fetch import Fetcher, Refused as FetchRefused, Unreachable

CONNECT_TIMEOUT = 5.0
MEDIA_DEADLINE = 60.0


class SessionPerThread:
    """Mixed into a provider: `self._http` is this thread's own session."""

    @property
    def _http(self) -> requests.Session:
        local = self.__dict__.get("_sessions")
        if local is None:
            local = self.__dict__.setdefault("_sessions", threading.local())
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        return session


def download(url: str, *, what: str, max_bytes: int, read_timeout: float, trusted: tuple = (),
             headers: dict | None = None, credentials_for: str | None = None,
             refused_hint: str = "") -> tuple[bytes, str]:
    """(the file's bytes, the Content-Type the server gave); `what` names it in errors.

    Through the guarded fetcher (utils/fetch.py): a public address, or exactly one of the
    `trusted` origins (the account's configured gateway URLs); `headers` only to exactly
    `credentials_for`'s origin."""
    fetcher = Fetcher(trusted, connect_timeout=CONNECT_TIMEOUT, read_timeout=read_timeout,
                      deadline=MEDIA_DEADLINE)
    try:
        got = fetcher.get(url, max_bytes=max_bytes, headers=headers, credentials_for=credentials_for)
    except FetchRefused as exc:
        raise Rejected(f"{what}: {exc}") from None
    except Unreachable as exc:
        raise Unavailable(f"{what} failed: {exc}") from None
    if got.status >= 500:
        raise Unavailable(f"{what}: HTTP {got.status}")
    if got.status != 200:
        raise Rejected(f"{what}: HTTP {got.status}{refused_hint}")
    return got.data, got.mime
