"""Taking work in: a Telegram update or a CRM signal becomes a durable job.

Both doors (webhook_server, crm_listener) and the long-polling loop call this, and answer
only after it returned, so an acknowledged update or signal is on disk.
"""
from __future__ import annotations

from typing import Any

from models.jobs import SYNC, UPDATES, JobQueue

# Update fields that carry a message-like object with a chat.
_MESSAGE_FIELDS = ("message", "edited_message", "channel_post", "edited_channel_post",
                   "business_message", "edited_business_message")
_CHAT_FIELDS = ("my_chat_member", "chat_member", "chat_join_request", "message_reaction")


class BadUpdate(ValueError):
    """The body is not a Telegram update."""


def parse_update_id(update: Any) -> int:
    if not isinstance(update, dict):
        raise BadUpdate("an update must be a JSON object")
    update_id = update.get("update_id")
    if type(update_id) is not int or update_id < 0:
        raise BadUpdate("update_id must be a non-negative integer")
    return update_id


def telegram_chat_of(update: dict) -> int | None:
    """The Telegram chat an update belongs to: its updates are processed in order."""
    for name in _MESSAGE_FIELDS:
        chat_id = _dig(update, name, "chat", "id")
        if chat_id is not None:
            return chat_id
    for name in _CHAT_FIELDS:
        chat_id = _dig(update, name, "chat", "id")
        if chat_id is not None:
            return chat_id
    callback = update.get("callback_query")
    if isinstance(callback, dict):
        chat_id = _dig(callback, "message", "chat", "id")
        return chat_id if chat_id is not None else _dig(callback, "from", "id")
    for value in update.values():
        user_id = _dig(value, "from", "id")
        if user_id is not None:
            return user_id
    return None


def _dig(value: Any, *path: str) -> int | None:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if type(value) is int else None


class Inbox:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def take_update(self, update: dict) -> bool:
        """Store a Telegram update once per update_id. False = a re-delivery, ignored."""
        update_id = parse_update_id(update)
        chat_id = telegram_chat_of(update)
        return self.queue.enqueue(
            UPDATES, "tg_update", update, dedupe_key=f"tg:{update_id}",
            lane=None if chat_id is None else f"tg:{chat_id}", seq=update_id, priority=1)

    def take_signal(self, id_i: int) -> str:
        """Ask for a sync of CRM chat `id_i`; a burst of signals collapses into one sync."""
        return self.queue.enqueue_coalesced(SYNC, "crm_sync", {"id_i": id_i},
                                            dedupe_key=f"sync:{id_i}")
