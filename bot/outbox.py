"""The one way to talk to Telegram: send now, edit, enqueue — all as durable `tg_send`
jobs performed by the sender, within the shared limits.

* `enqueue` stores a send for the workers (posts, notices, reports).
* `send_now` stores it too, then performs it at once on the calling thread (an answer
  to a person should not wait for a worker). If it cannot go now — the chat's budget is
  used up for more than a moment, Telegram refuses for a while — it stays queued and the
  workers finish it; the caller never fails because of it.
* `edit` changes a message the bot sent (a shared post, a history page) the same way.

While an update is being handled (`for_update`), each send gets an idempotency key made
of the update id and the send's purpose: if the update is run again after a crash, the
sends it already decided are not stored a second time, so nobody gets a message twice.
"""
from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Callable, Iterator

from models.jobs import SEND, JobQueue

# Interactive sends go before background posts in the send queue.
NOW_PRIORITY = 2
EDIT_PRIORITY = 1
# How long "send now" may keep its caller waiting for a slot: a person's second message
# within Telegram's one-per-second; a busy group gets its edit from a worker instead.
PATIENCE_PRIVATE = 1.2
PATIENCE_GROUP = 0.2


def send_lane(chat_id: int) -> str:
    return f"send:{chat_id}"


def markup_dict(markup: Any) -> dict | None:
    """A keyboard as the JSON the queue stores (telebot's markup objects, or dicts)."""
    if markup is None or isinstance(markup, dict):
        return markup
    return json.loads(markup.to_json())


class TelegramOut:
    def __init__(self, jobs: JobQueue, *, run_now: Callable[[int], object] | None = None,
                 ring: Callable[[], object] | None = None) -> None:
        self.jobs = jobs
        # Set by the composition root (it owns the sender and the failure policy).
        self.run_now = run_now
        self.ring = ring
        self._local = threading.local()

    # -- the update being handled --------------------------------------------------------

    @contextlib.contextmanager
    def for_update(self, update_id: int | None) -> Iterator[None]:
        self._local.update_id, self._local.count = update_id, 0
        try:
            yield
        finally:
            self._local.update_id = None

    def key(self, purpose: str | None = None) -> str | None:
        """The idempotency key of the next send decided by the current update."""
        update_id = getattr(self._local, "update_id", None)
        if update_id is None:
            return None
        self._local.count += 1
        return f"upd:{update_id}:{purpose or self._local.count}"

    # -- sending -------------------------------------------------------------------------

    def enqueue(self, chat_id: int | None, html: str | None = None, markup: Any = None, *,
                notice: str | None = None, values: dict | None = None, key: str | None = None,
                conversation_id: int | None = None, message_id: int | None = None,
                purpose: str = "desk", reply_to: int | None = None, silent: bool = False,
                method: str = "sendMessage", edit_message_id: int | None = None,
                language: str | None = None, priority: int = 0, cur=None) -> int | None:
        """Store one Telegram call; returns the job id (None: no chat, or already stored)."""
        if chat_id is None:
            return None
        payload: dict[str, Any] = {"chat_id": chat_id, "method": method, "purpose": purpose}
        if notice is not None:
            payload.update(notice=notice, values=values or {})
        else:
            payload["text"] = html
        for name, value in (("reply_markup", markup_dict(markup)),
                            ("conversation_id", conversation_id), ("message_id", message_id),
                            ("reply_to", reply_to), ("edit_message_id", edit_message_id),
                            ("language", language)):
            if value is not None:
                payload[name] = value
        if silent:
            payload["disable_notification"] = True
        job_id = self.jobs.enqueue_id(SEND, "tg_send", payload, dedupe_key=key,
                                      lane=send_lane(chat_id), priority=priority, cur=cur)
        if job_id is not None and cur is None and self.ring is not None:
            self.ring()
        return job_id

    def send_now(self, chat_id: int | None, html: str | None = None, markup: Any = None, *,
                 key: str | None = None, once: str | None = None, **options: Any) -> bool:
        """Send at once (an answer to a person), durably and at most once per update —
        or, with `once`, at most once for that key whatever the update. False when the
        send was stored already (nothing new to send)."""
        job_id = self.enqueue(chat_id, html, markup, key=once or self.key(key),
                              priority=NOW_PRIORITY, **options)
        self._perform(job_id, chat_id)
        return job_id is not None

    def edit(self, chat_id: int, message_id: int, html: str, markup: Any = None, *,
             caption: bool = False, now: bool = True) -> None:
        """Change a message the bot sent; an edit repeated is harmless ("not modified")."""
        job_id = self.enqueue(chat_id, html, markup, edit_message_id=message_id,
                              method="editMessageCaption" if caption else "editMessageText",
                              priority=EDIT_PRIORITY)
        if now:
            self._perform(job_id, chat_id)

    def _perform(self, job_id: int | None, chat_id: int | None) -> None:
        if job_id is not None and self.run_now is not None:
            self.run_now(job_id, PATIENCE_GROUP if chat_id is not None and chat_id < 0
                         else PATIENCE_PRIVATE)
