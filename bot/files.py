"""Files managers send to the bot, downloaded from Telegram within bounds.

telebot's own download has no timeout: a stalled transfer would hold a worker and its
lane for ever. Here the file path comes from getFile (telebot, with its timeouts) and
the bytes are streamed with a connect and read timeout, a size cap (a bot may download
20 MB) and an overall deadline. The stream is read with `read1` (whatever has arrived,
not a full chunk), so a transfer that trickles a byte at a time still meets the deadline
between two reads instead of filling a 64 KB chunk for minutes.
"""
from __future__ import annotations

import time

import requests
import urllib3
from telebot.apihelper import ApiTelegramException

from models.jobs import Permanent
from models.outbound import Attachment

MAX_BYTES = 20 * 1024 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0       # between two chunks
DEADLINE = 120.0          # the whole download
CHUNK = 64 * 1024


class TelegramFiles:
    def __init__(self, api, *, max_bytes: int = MAX_BYTES, deadline: float = DEADLINE) -> None:
        self.api = api      # bot/sender.py::TelegramApi
        self.max_bytes = max_bytes
        self.deadline = deadline

    def download(self, attachment: Attachment) -> bytes:
        """The file's bytes; Permanent when Telegram will never give them (too big, gone),
        a transient error (network, 5xx, timeout) otherwise."""
        try:
            path = self.api.file_path(attachment.file_id)
        except ApiTelegramException as exc:
            if exc.error_code == 400:
                raise Permanent("Telegram will not give the manager's file", exc.description) from exc
            raise
        if not path:
            raise Permanent("Telegram will not give the manager's file", "no file_path")
        url = self.api.file_url(path)
        started = time.monotonic()
        with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
            if response.status_code >= 500:
                raise requests.ConnectionError(f"Telegram file download: HTTP {response.status_code}")
            if response.status_code != 200:
                raise Permanent("Telegram will not give the manager's file",
                                f"HTTP {response.status_code}")
            chunks, size = [], 0
            while True:
                if time.monotonic() - started > self.deadline:
                    raise requests.Timeout(f"Telegram file download over {self.deadline:g} s")
                try:
                    chunk = response.raw.read1(CHUNK)
                except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
                        OSError) as exc:
                    raise requests.ConnectionError(f"Telegram file download cut off: {exc}") from None
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise Permanent("the manager's file is too big", f"over {self.max_bytes} bytes")
                chunks.append(chunk)
            expected = response.headers.get("Content-Length")
            if expected and expected.isdigit() and int(expected) != size:
                raise requests.ConnectionError(f"Telegram file download cut off at {size} of {expected}")
        return b"".join(chunks)
