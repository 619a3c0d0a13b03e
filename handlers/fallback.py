"""What nobody else handled. Registered last.

Pending people get "waiting for approval", strangers are asked to /start, a tap on a
button that is forged, stale or not theirs only stops the spinner. Nothing here changes
any state.
"""
from __future__ import annotations

import time
from functools import partial

from telebot import TeleBot, types

from handlers.common import Desk
from models.users import PENDING, User


# People without access get their one-line answer to at most a few messages a minute,
# however much they write: a flood costs the bot a few messages, not one per message.
GATE_ANSWERS_PER_MINUTE = 5


def message(desk: Desk, message: types.Message, user: User | None) -> None:
    if message.chat.type != "private" or (user is not None and user.role != PENDING):
        return  # managers: an unknown command or content gets silence, never a forward
    answer = desk.t(user, "waiting_approval" if user is not None else "press_start")
    minute = int(time.time() // 60)
    for slot in range(GATE_ANSWERS_PER_MINUTE):
        if desk.say(message.chat.id, answer, once=f"gate:{message.chat.id}:{minute}:{slot}"):
            return


def callback(desk: Desk, call: types.CallbackQuery, user: User | None) -> None:
    allowed = user is not None and user.is_manager
    desk.answer(call, desk.t(user, "stale_button" if allowed else "no_access"))


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(message, desk),
                                 content_types=["text", "photo", "document", "audio", "video",
                                                "voice", "sticker", "animation", "video_note",
                                                "location", "contact"])
    bot.register_callback_query_handler(partial(callback, desk), func=lambda call: True)
