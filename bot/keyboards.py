"""Inline keyboards, as plain JSON-able dicts (they travel through the durable queue)."""
from __future__ import annotations

from telebot import types

from bot.callbacks import CallbackCodec
from bot.texts import text


def inline(rows: list[list[tuple[str, str]]]) -> dict:
    """[[(label, callback_data), …], …] → Telegram's reply_markup object."""
    return {"inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row]
                                for row in rows]}


def to_markup(keyboard: dict | None) -> types.InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    markup = types.InlineKeyboardMarkup()
    for row in keyboard["inline_keyboard"]:
        markup.row(*[types.InlineKeyboardButton(**button) for button in row])
    return markup


def reply_button(codec: CallbackCodec, language: str, crm_message_id: int, *, task: bool) -> dict:
    """Under a shared-chat post: take the chat (ordinary) or connect to it (task chat)."""
    if task:
        return inline([[(text("btn_connect", language), codec.encode("connect", crm_message_id))]])
    return inline([[(text("btn_reply", language), codec.encode("reply", crm_message_id))]])


def open_chat_button(codec: CallbackCodec, language: str, id_i: int) -> dict:
    return inline([[(text("btn_open_chat", language), codec.encode("open", id_i))]])
