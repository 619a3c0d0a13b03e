"""A Telegram update at the border: its id, and the lane that keeps it in order with the
updates it must follow (what the Telegram door and the long-polling loop store)."""
from __future__ import annotations

from typing import Any

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
    if type(update_id) is not int or not 0 <= update_id < 2**63:
        raise BadUpdate("update_id must be a non-negative 64-bit integer")
    return update_id


def lane_of(update: dict) -> str | None:
    """Which updates must be processed in order with this one.

    Messages: those of the same Telegram chat (SPEC §6). Button taps: those of the same
    person, in the lane of that person's private chat (whose id is the person's id), so
    a person's taps and typed messages run in the order they were made: a tap on
    "📩 Написати" for chat X followed at once by text can never send the text to chat Y.
    Twenty managers tapping under one shared-chat post are still twenty lanes.
    """
    tapper = _dig(update, "callback_query", "from", "id")
    if tapper is not None:
        return f"tg:{tapper}"
    for name in _MESSAGE_FIELDS + _CHAT_FIELDS:
        chat_id = _dig(update, name, "chat", "id")
        if chat_id is not None:
            return f"tg:{chat_id}"
    for value in update.values():
        user_id = _dig(value, "from", "id")
        if user_id is not None:
            return f"tg:{user_id}"
    return None


def _dig(value: Any, *path: str) -> int | None:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    # Telegram ids fit 64 bits; anything else is not an id (and would not fit the lane).
    return value if type(value) is int and -2**63 <= value < 2**63 else None


def take_update(inbox, update: Any) -> int | None:
    """Store a Telegram update durably once per update_id (BadUpdate if it is not one):
    the job's id, None for a re-delivery."""
    return inbox.take_update(parse_update_id(update), lane_of(update), update)
