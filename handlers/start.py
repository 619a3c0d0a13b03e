"""/start: registration of new people, and the main menu for the approved."""
from __future__ import annotations

import logging
from functools import partial

from telebot import TeleBot, types

from bot import formatting as fmt
from bot.keyboards import main_menu
from handlers.common import Desk
from models.users import PENDING

log = logging.getLogger(__name__)


def start(desk: Desk, message: types.Message, sender) -> None:
    users = desk.deps.users
    user, _ = users.register(sender.id, sender.username, sender.first_name, sender.language_code)
    if not user.reachable:
        users.set_reachable(user.tg_id, True)  # /start again after blocking the bot
    name = fmt.escape(user.display_name)
    if user.is_manager:
        desk.state.clear(user.tg_id)
        desk.say(message.chat.id, desk.t(user, "welcome", name=name), main_menu(desk.lang(user)),
                 key="welcome")
        return
    if user.role == PENDING:
        # Each its own durable step, once per person and admin (a /start repeated, or this
        # update run again, asks nobody twice), and decided before the welcome is tried:
        # a welcome Telegram refuses never keeps the admins from hearing.
        for admin in users.admins():
            desk.out.enqueue(admin.tg_id, desk.t(admin, "new_user_for_admins", name=name,
                                                 tg_id=user.tg_id),
                             key=f"new_user:{user.tg_id}:{admin.tg_id}")
    desk.say(message.chat.id, desk.t(user, "waiting_approval"), key="welcome")


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(start, desk), commands=["start"], chat_types=["private"])
