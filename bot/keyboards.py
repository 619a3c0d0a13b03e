"""Inline keyboards, as plain JSON-able dicts (they travel through the durable queue)."""
from __future__ import annotations

from telebot import types

from bot.callbacks import CallbackCodec
from bot.texts import text


def inline(rows: list[list[tuple[str, str]]]) -> dict:
    """[[(label, callback_data), …], …] → Telegram's reply_markup object."""
    return {"inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row]
                                for row in rows]}


def to_markup(keyboard: dict | None):
    """A keyboard dict (as stored in queued sends) → telebot's markup object."""
    if not keyboard:
        return None
    if "keyboard" in keyboard:
        return reply_keyboard([[b["text"] for b in row] for row in keyboard["keyboard"]])
    markup = types.InlineKeyboardMarkup()
    for row in keyboard["inline_keyboard"]:
        markup.row(*[types.InlineKeyboardButton(**_button(button)) for button in row])
    return markup


def _button(button: dict) -> dict:
    """A stored button as telebot's constructor takes it (a copy_text is an object)."""
    if isinstance(button.get("copy_text"), dict):
        return dict(button, copy_text=types.CopyTextButton(**button["copy_text"]))
    return button


def reply_button(codec: CallbackCodec, language: str, crm_message_id: int, *, task: bool) -> dict:
    """Under a shared-chat post: take the chat (ordinary) or connect to it (task chat)."""
    if task:
        return inline([[(text("btn_connect", language), codec.encode("connect", crm_message_id))]])
    return inline([[(text("btn_reply", language), codec.encode("reply", crm_message_id))]])


def open_chat_button(codec: CallbackCodec, language: str, id_i: int) -> dict:
    """Under a notification: opens the chat straight into writing mode (one tap)."""
    return inline([[(text("btn_open_chat", language), codec.encode("openw", id_i))]])


def reply_keyboard(rows: list[list[str]]) -> types.ReplyKeyboardMarkup:
    markup = types.ReplyKeyboardMarkup(resize_keyboard=True)
    for row in rows:
        markup.row(*[types.KeyboardButton(label) for label in row])
    return markup


def main_menu_rows(language: str) -> list[list[str]]:
    return [[text("messages", language), text("pin_chats", language)],
            [text("stats_pin_chats", language)],
            [text("history_messages", language)],
            [text("history_pin_chats", language)],
            [text("history", language)],
            [text("find_chat", language), text("shift_menu", language)]]


def main_menu(language: str) -> types.ReplyKeyboardMarkup:
    return reply_keyboard(main_menu_rows(language))


def main_menu_dict(language: str) -> dict:
    """The main menu for a queued send (plain JSON)."""
    return {"keyboard": [[{"text": label} for label in row] for row in main_menu_rows(language)],
            "resize_keyboard": True}


def send_mode_keyboard(language: str) -> types.ReplyKeyboardMarkup:
    """While writing to a client: only what a manager needs beside the text field."""
    return reply_keyboard([[text("history_chat", language), text("send_status_read", language)],
                           [text("back_to_chat", language)]])
