"""What the WhatsApp providers share on the wire: a requests session per thread (a
session is not safe to share between threads), and the bounded download of a customer's
file — its size and its time capped, a 5xx or a broken connection transient (the step is
retried), any other answer a refusal."""
from __future__ import annotations

import threading
import time

import requests

from channels.base import Rejected, Unavailable

CONNECT_TIMEOUT = 5.0
MEDIA_DEADLINE = 60.0
CHUNK = 64 * 1024


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


def download(session: requests.Session, url: str, *, what: str, max_bytes: int,
             read_timeout: float, headers: dict | None = None,
             refused_hint: str = "") -> tuple[bytes, str]:
    """(the file's bytes, the Content-Type the server gave); `what` names it in errors."""
    started = time.monotonic()
    try:
        with session.get(url, headers=headers or {}, stream=True,
                         timeout=(CONNECT_TIMEOUT, read_timeout)) as answer:
            if answer.status_code >= 500:
                raise Unavailable(f"{what}: HTTP {answer.status_code}")
            if answer.status_code != 200:
                raise Rejected(f"{what}: HTTP {answer.status_code}{refused_hint}")
            chunks, total = [], 0
            for chunk in answer.iter_content(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise Rejected(f"the file is over {max_bytes} bytes")
                if time.monotonic() - started > MEDIA_DEADLINE:
                    raise Unavailable(f"{what} over its deadline")
                chunks.append(chunk)
            mime = (answer.headers.get("Content-Type") or "application/octet-stream").split(";")[0][:100]
    except requests.RequestException as exc:
        raise Unavailable(f"{what} failed: {type(exc).__name__}") from None
    return b"".join(chunks), mime
