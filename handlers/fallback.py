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


# People without access get their one-line answer at most once a minute, however much
# they write: a flood costs the bot one message a minute, not one per message.
GATE_ANSWER_EVERY = 60


def message(desk: Desk, message: types.Message, user: User | None) -> None:
    if message.chat.type != "private":
        return
    once = f"gate:{message.chat.id}:{int(time.time() // GATE_ANSWER_EVERY)}"
    if user is None:
        desk.say(message.chat.id, desk.t(None, "press_start"), once=once)
    elif user.role == PENDING:
        desk.say(message.chat.id, desk.t(user, "waiting_approval"), once=once)
    # Managers: an unknown command or content gets silence, never a forward.


def callback(desk: Desk, call: types.CallbackQuery, user: User | None) -> None:
    allowed = user is not None and user.is_manager
    desk.answer(call, desk.t(user, "stale_button" if allowed else "no_access"))


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(message, desk),
                                 content_types=["text", "photo", "document", "audio", "video",
                                                "voice", "sticker", "animation", "video_note",
                                                "location", "contact"])
    bot.register_callback_query_handler(partial(callback, desk), func=lambda call: True)
