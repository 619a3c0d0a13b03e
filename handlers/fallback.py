"""What nobody else handled. Registered last.

Pending people get "waiting for approval", strangers are asked to /start, a tap on a
button that is forged, stale or not theirs only stops the spinner. Nothing here changes
any state.
"""
from __future__ import annotations

from telebot import TeleBot, types

from handlers.common import Desk
from models.users import PENDING, User


def register(bot: TeleBot, desk: Desk) -> None:
    def message(message: types.Message, user: User | None) -> None:
        if message.chat.type != "private":
            return
        if user is None:
            bot.send_message(message.chat.id, desk.t(None, "press_start"))
        elif user.role == PENDING:
            bot.send_message(message.chat.id, desk.t(user, "waiting_approval"))
        # Managers: an unknown command or content gets silence, never a forward.

    def callback(call: types.CallbackQuery, user: User | None) -> None:
        allowed = user is not None and user.is_manager
        desk.answer(call, desk.t(user, "stale_button" if allowed else "no_access"))

    bot.register_message_handler(message, content_types=["text", "photo", "document", "audio",
                                                         "video", "voice", "sticker", "animation",
                                                         "video_note", "location", "contact"])
    bot.register_callback_query_handler(callback, func=lambda call: True)
