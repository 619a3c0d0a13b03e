"""The one way to talk to Telegram: send now, edit, enqueue — all as durable `tg_send`
jobs performed by the sender, within the shared limits.

* `enqueue` stores a send for the workers (posts, notices, reports).
* `send_now` stores it too, then performs it at once on the calling thread (an answer
  to a person should not wait for a worker). If it cannot go now — the chat's budget is
  used up for more than a moment, Telegram refuses for a while — it stays queued and the
  workers finish it; the caller never fails because of it.
* `edit` changes a message the bot sent (a shared post, a history page) the same way.
* `tell` stores a service's `Notice` (services/notices.py): a text key and its values,
  worded by the sender in the reader's language; `as_job` gives the same send as a job a
  service returns to be stored with its own transaction.
* `post` stores a post the desk made (bot/posts.py): the shared chat's and watchers'.

No other module writes a Telegram send to the queue (tests/test_architecture.py).

While an update is being handled (`for_update`), each send gets an idempotency key made
of the update id and the send's purpose: if the update is run again after a crash, the
sends it already decided are not stored a second time, so nobody gets a message twice.
"""
from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Callable, Iterator

from models.jobs import SEND, Job, JobQueue, NewJob
from services.notices import Notice, Says

# Interactive sends go before background posts in the send queue.
NOW_PRIORITY = 2
EDIT_PRIORITY = 1
# How long "send now" may keep its caller waiting for a slot: a person's second message
# within Telegram's one-per-second; a busy group gets its edit from a worker instead.
PATIENCE_PRIVATE = 1.2
PATIENCE_GROUP = 0.2


# The job kind of a Telegram call (performed by bot/sender.py).
SEND_KIND = "tg_send"


def send_lane(chat_id: int) -> str:
    return f"send:{chat_id}"


def markup_dict(markup: Any) -> dict | None:
    """A keyboard as the JSON the queue stores (telebot's markup objects, or dicts)."""
    if markup is None or isinstance(markup, dict):
        return markup
    return json.loads(markup.to_json())


class TelegramOut:
    def __init__(self, jobs: JobQueue, *, codec=None, run_now: Callable[[int], object] | None = None,
                 ring: Callable[[], object] | None = None) -> None:
        self.jobs = jobs
        self.codec = codec        # bot/callbacks.py: a notice's button
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
        return self.store(payload, key=key, priority=priority, cur=cur)

    def store(self, payload: dict, *, key: str | None, priority: int = 0, cur=None) -> int | None:
        """The one write of a Telegram call to the queue."""
        job_id = self.jobs.enqueue_id(SEND, SEND_KIND, payload, dedupe_key=key,
                                      lane=send_lane(int(payload["chat_id"])), priority=priority,
                                      cur=cur)
        if job_id is not None and cur is None and self.ring is not None:
            self.ring()
        return job_id

    def store_leased(self, payload: dict, *, key: str, cur) -> Job | None:
        """Stored already leased to this worker (its rate-limit slot reserved by the caller
        in `cur`): sent by it right after the commit (bot/fanout.py)."""
        return self.jobs.enqueue_leased(SEND, SEND_KIND, dict(payload, reserved=True), dedupe_key=key,
                                        lane=send_lane(int(payload["chat_id"])), cur=cur)

    def post(self, post, *, key: str | None = None, cur=None, **extra: Any) -> int | None:
        """A post the desk made (bot/posts.py::Post), keyed by its message and part."""
        return self.store(dict(post.payload(), **extra), key=key or post.dedupe_key, cur=cur)

    # -- what services tell ----------------------------------------------------------------

    def tell(self, notice: Notice, cur=None) -> int | None:
        """Store a service's notice; None when it has no chat or was stored already."""
        if notice.to is None:
            return None
        return self.store(self._notice_payload(notice), key=notice.key, priority=notice.priority,
                          cur=cur)

    def as_job(self, notice: Notice) -> NewJob:
        """The same send as a job for the caller to store with its own transaction."""
        return NewJob(SEND, SEND_KIND, self._notice_payload(notice), dedupe_key=notice.key,
                      lane=send_lane(notice.to), priority=notice.priority)

    def _notice_payload(self, notice: Notice) -> dict:
        payload: dict[str, Any] = {
            "chat_id": notice.to, "method": "sendMessage", "purpose": notice.purpose,
            "notice": notice.says,
            "values": {name: ({"says": v.key, "values": dict(v.values)} if isinstance(v, Says) else v)
                       for name, v in notice.values.items()}}
        if notice.button is not None:
            button = notice.button
            payload["reply_markup"] = {"inline_keyboard": [[{
                "label": button.label, "callback_data": self.codec.encode(button.action, *button.args)}]]}
        elif notice.main_menu:
            payload["reply_markup"] = {"main_menu": True}
        for name in ("conversation_id", "message_id", "reply_to", "language_of"):
            if getattr(notice, name) is not None:
                payload[name] = getattr(notice, name)
        return payload

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
